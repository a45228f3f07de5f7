"""QMP inject-nmi (refused on riscv virt: the step is skipped with QEMU's reason)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .. import faults
from ..model.prediction import UNSUPPORTED, Prediction
from ..model.state import Span
from ..observations import Observations, StepRecord
from .base import Step, StepContext, StepType

if TYPE_CHECKING:
    from ..model.engine import Model


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
