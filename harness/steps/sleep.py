"""Let guest time pass (the lockup detectors run on it)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from harness.expect.observations import Observations, StepRecord
from harness.guest.console import idle
from harness.model.prediction import Prediction
from harness.model.state import Span
from harness.scenario.types import Step
from harness.steps import fields as v
from harness.steps.base import StepContext, StepType

if TYPE_CHECKING:
    from harness.model.engine import Model


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
        "seconds": (v.NUM, True, None, v.seconds),
    },
    execute=execute,
    transition=transition,
)
