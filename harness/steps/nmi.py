"""QMP inject-nmi (refused on riscv virt: the step is skipped with QEMU's reason)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from harness.expect.observations import Observations, StepRecord
from harness.guest import faults
from harness.model.prediction import UNSUPPORTED, Prediction
from harness.model.state import Span
from harness.scenario.types import Step
from harness.steps.base import StepContext, StepType

if TYPE_CHECKING:
    from harness.model.engine import Model


def execute(live: StepContext, step: Step, rec: StepRecord, obs: Observations, online: set[int]) -> None:
    rec.detail.update(faults.nmi(live.fault))


def transition(m: Model, p: Prediction, a: dict, step: Step) -> Span:
    arch = m.features.arch
    p.facts["nmi:injected"] = ("QEMU's inject-nmi is accepted", arch.nmi_injection)
    if not arch.nmi_injection:
        p.outcome = {UNSUPPORTED}
        p.note(f"{arch.name}: no NMI to inject (QEMU refuses inject-nmi); reported as skipped")
    return Span(0.0, 0.1)


STEP = StepType(
    kind="nmi",
    shorthand=None,
    fields={},
    execute=execute,
    transition=transition,
)
