"""The virtio balloon inflated to a target, held, then released."""
from __future__ import annotations

from typing import TYPE_CHECKING

from harness.expect.observations import Observations, StepRecord
from harness.guest import faults
from harness.model.prediction import Prediction
from harness.model.state import Span
from harness.scenario.types import Step
from harness.steps import fields as v
from harness.steps.base import StepContext, StepType

if TYPE_CHECKING:
    from harness.model.engine import Model


def execute(live: StepContext, step: Step, rec: StepRecord, obs: Observations, online: set[int]) -> None:
    a = step.args
    rec.detail.update(faults.balloon(live.fault, v.size_bytes(a["target"]), a["hold"], step.timeout))


def transition(m: Model, p: Prediction, a: dict, step: Step) -> Span:
    p.note("the balloon changes guest memory only; the model claims nothing about IPIs")
    return Span(0.1, float(step.timeout)) + float(a.get("hold") or 0.0)


STEP = StepType(
    kind="balloon",
    shorthand="target",
    fields={
        "target": (str, True, None, v.balloon_target),
        "hold": (v.NUM, False, 1.0, v.not_negative),
    },
    execute=execute,
    transition=transition,
    needs=lambda a: frozenset({"balloon"}),
)
