"""Where every vCPU executes, read through QMP and symbolised (a probe)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from harness.expect.observations import Observations, StepRecord
from harness.guest import vcpu_probe as vcpu_probe
from harness.model.prediction import Prediction
from harness.model.state import Span
from harness.scenario.types import Step
from harness.steps import fields as v
from harness.steps.base import StepContext, StepType

if TYPE_CHECKING:
    from harness.model.engine import Model


def execute(live: StepContext, step: Step, rec: StepRecord, obs: Observations, online: set[int]) -> None:
    a = step.args
    rec.detail["probe"] = a["label"]
    obs.probes[a["label"]] = vcpu_probe.probe(live.qmp, a["label"], live.system_map, live.arch,
                                             live.fault.harts, a["rounds"])


def transition(m: Model, p: Prediction, a: dict, step: Step) -> Span:
    p.vcpus = {n: m.locations(n) for n in range(m.state.ncpus)}
    return Span(0.0, 0.1)               # the VM is stopped while sampled: no guest time


STEP = StepType(
    kind="vcpus",
    shorthand="label",
    fields={
        "label": (str, True, None, None),
        "rounds": (int, False, 3, v.positive),
    },
    execute=execute,
    transition=transition,
    needs=lambda a: frozenset({"harts"}),
)
