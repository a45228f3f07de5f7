"""What every expectation kind is made of: its schema (scenario/parse.py
validates with it, then calls its extra validation), the text saying what
it expects, and its evaluation against what a run observed. One module per
kind under harness/expect/ (<kind>_check.py) holds all of them, so adding
an expectation kind touches one file and kinds_registry.py, as
steps/base.py's StepType does for steps."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

from harness.core.yamlfile import Fields, Where
from harness.expect import validators as vf
from harness.expect.observations import Observations

if TYPE_CHECKING:
    from harness.scenario.parse import Ctx

# A field: (accepted types, required, default, extra validation or None).
# Validators take (value, where, ctx) and raise where.error(...).
Validator = Callable[[Any, Where, "Ctx"], None]
FieldSpec = tuple[Any, bool, Any, "Validator | None"]
# What an evaluation finds: (verdict, observed, the step it looked at or None).
Outcome = tuple[str, str, "str | None"]
Evaluation = Callable[[dict[str, Any], Observations], Outcome]


def _nothing(args: dict[str, Any], af: Fields, ctx: "Ctx") -> None:
    return None


@dataclass(frozen=True)
class ExpectationKind:
    """One kind of expectation, by the name a scenario's expect: list uses."""
    kind: str
    fields: Mapping[str, FieldSpec]
    # What the expectation asks for, in words (every check result shows it).
    expected: Callable[[Mapping[str, Any]], str]
    # None: not judged here (the model's claims: expect/crosscheck.py).
    evaluate: Evaluation | None
    # Checks across fields and against the rest of the scenario (its step
    # names, snapshot and probe labels), run once every field is read.
    validate: Callable[[dict[str, Any], Fields, "Ctx"], None] = _nothing
    # Written `<kind>: true`, no fields, named after its kind (model: true).
    switch: bool = False


def check_step(args: Mapping[str, Any], af: Fields, ctx: "Ctx") -> None:
    """The expectation's 'step' names one of the scenario's steps."""
    if args["step"] not in ctx.step_names:
        raise af.at("step").error(f"no step named '{args['step']}' (steps: {', '.join(sorted(ctx.step_names))})")


def check_cpu_table(af: Fields, key: str, table: Mapping[Any, Any] | None, what: str,
                    allowed: tuple[str, ...], ctx: "Ctx") -> None:
    """A {CPU number: one of `allowed`} table (kdb states, backtrace forms)."""
    where = af.at(key)
    for cpu, value in (table or {}).items():
        vf.cpu_key(cpu, where, ctx)
        if value not in allowed:
            raise where.error(f"CPU {cpu}: unknown {what} {value!r} (expected one of: {', '.join(allowed)})")


def needs_one_of(args: Mapping[str, Any], af: Fields, keys: tuple[str, ...], why: str = "") -> None:
    """An expectation that names nothing it can fail on passes on any
    console, so it is refused: one of keys must be given (not empty)."""
    if all(args[k] is None or args[k] == {} for k in keys):
        raise af.where.error(f"names nothing it can fail on{why}: give at least one of {', '.join(keys)}")
