"""Let guest time pass (the lockup detectors run on it)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..console import idle
from ..model.prediction import Prediction
from ..model.state import Span
from ..observations import Observations, StepRecord
from . import fields as v
from .base import Step, StepContext, StepType

if TYPE_CHECKING:
    from ..model.engine import Model


def execute(live: StepContext, step: Step, rec: StepRecord, obs: Observations, online: set[int]) -> None:
    con = live.con
    a = step.args
    idle(con, a["seconds"])


def transition(m: Model, p: Prediction, a: dict, step: Step) -> Span:
    s = float(a["seconds"] or 0.0)
    return Span(s, s + 0.5)


STEP = StepType(
    kind="sleep",
    shorthand="seconds",
    fields={
        "seconds": (v.NUM, True, None, v.positive),
    },
    execute=execute,
    transition=transition,
)
