"""Some vCPU threads starved of host CPU (cgroup quota)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from harness.expect.observations import Observations, StepRecord
from harness.guest import faults
from harness.model.prediction import Prediction
from harness.model.state import Span
from harness.model.timing import SLACK
from harness.scenario.types import Step
from harness.steps import fields as v
from harness.steps.base import StepContext, StepType

if TYPE_CHECKING:
    from harness.model.engine import Model


def execute(live: StepContext, step: Step, rec: StepRecord, obs: Observations, online: set[int]) -> None:
    a = step.args
    rec.detail.update(faults.starve(live.fault, a["cpus"], a["seconds"], a["during"], step.timeout,
                                     a["share"]))
    if "during" in rec.detail:
        rec.status = rec.detail["during"]["status"]


def transition(m: Model, p: Prediction, a: dict, step: Step) -> Span:
    s = float(a.get("seconds") or 0.0)
    p.note("starved vCPUs run slowly, not stopped: the model predicts no detector report "
           "(docs/qmp.md has the measurements)")
    if a.get("during"):
        m.opaque(p)
    return Span(s, s + SLACK)


STEP = StepType(
    kind="starve",
    shorthand=None,
    fields={
        "cpus": (list, True, None, v.cpu_list),
        "seconds": (v.NUM, True, None, v.seconds),
        "during": (str, False, None, v.one_line),
        "share": (v.NUM, False, 0.01, v.share),
    },
    execute=execute,
    transition=transition,
    needs=lambda a: frozenset({"harts"}),
)
