"""What the model knows of step types, handed to it from above: each kind's
defaults and transition (harness/steps/registry.py registers every step
type), and the function that turns raw step mappings into Steps
(harness/scenario/parse.py registers as_steps). The model imports no step
module, so the step modules may import the model's state and predictions
without an import circle."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from harness.scenario.types import Step

if TYPE_CHECKING:
    from harness.model.engine import Model
    from harness.model.prediction import Prediction
    from harness.model.state import Span

Transition = Callable[["Model", "Prediction", dict, Step], "Span"]
Expander = Callable[..., list[Step]]


@dataclass(frozen=True)
class Kind:
    defaults: Callable[[], Mapping[str, Any]]
    transition: Transition


KINDS: dict[str, Kind] = {}
_expander: list[Expander] = []


def register(kind: str, defaults: Callable[[], Mapping[str, Any]], transition: Transition) -> None:
    KINDS[kind] = Kind(defaults, transition)


def register_expander(fn: Expander) -> None:
    _expander[:] = [fn]


def expand(steps: Iterable[Any], cpus: int, first: int = 0) -> list[Step]:
    """Raw step mappings (repeats included) as Steps, through the loader."""
    if not _expander or not KINDS:
        # Silence here would make every step UNMODELLED: say what is missing.
        raise RuntimeError("the model's step kinds are not registered: import harness.scenario.parse "
                           "(which imports harness.steps.registry) before predicting")
    return _expander[0](steps, cpus, first=first)
