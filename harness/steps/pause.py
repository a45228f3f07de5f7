"""QMP stop/cont: the whole VM paused for a while."""
from __future__ import annotations

from typing import TYPE_CHECKING

from harness.expect.observations import Observations, StepRecord
from harness.guest import faults
from harness.model.prediction import Prediction
from harness.model.state import Span
from harness.model.timing import DUR_CONSOLE
from harness.scenario.types import Step
from harness.steps import fields as v
from harness.steps.base import StepContext, StepType

if TYPE_CHECKING:
    from harness.model.engine import Model


def execute(live: StepContext, step: Step, rec: StepRecord, obs: Observations, online: set[int]) -> None:
    a = step.args
    rec.detail.update(faults.pause(live.fault, a["seconds"], step.timeout))


def transition(m: Model, p: Prediction, a: dict, step: Step) -> Span:
    p.note("the virtual clock stands still while QEMU is stopped: no guest time passes, "
           "no detector fires")
    return Span(0.0, 0.5) + DUR_CONSOLE + DUR_CONSOLE   # the two uptime reads


STEP = StepType(
    kind="pause",
    shorthand="seconds",
    fields={
        "seconds": (v.NUM, True, None, v.seconds),
    },
    execute=execute,
    transition=transition,
)
