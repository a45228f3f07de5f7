"""QMP system_reset, optionally while a command runs."""
from __future__ import annotations

from typing import TYPE_CHECKING

from harness.expect.observations import Observations, StepRecord
from harness.guest import faults
from harness.model.prediction import ABORTED, Prediction
from harness.model.state import MachineState, Span
from harness.scenario.types import Step
from harness.steps import fields as v
from harness.steps.base import StepContext, StepType

if TYPE_CHECKING:
    from harness.model.engine import Model


def execute(live: StepContext, step: Step, rec: StepRecord, obs: Observations, online: set[int]) -> None:
    con = live.con
    a = step.args
    rec.detail.update(faults.reset(live.fault, a["after"], a["during"], step.timeout))
    online.clear()
    online.update(range(con.cpus or 0))


def transition(m: Model, p: Prediction, a: dict, step: Step) -> Span:
    st = m.state
    if not m.reboot:
        p.outcome = {ABORTED}
        st.wedged = "QEMU exited on the reset (-no-reboot)"
        st.wedge_outcome = ABORTED
        return Span(0.0, 0.5)
    m.state = MachineState.boot(st.ncpus, m.features.arch.uart_irq_cpu)
    m.state.clock = st.clock
    p.note("the guest reboots: every CPU online and idle again, loads and stuck CPUs gone")
    return Span(0.5, 5.0) + float(a.get("after") or 0.0)


STEP = StepType(
    kind="reset",
    shorthand=None,
    fields={
        "after": (v.NUM, False, 0, v.not_negative),
        "during": (str, False, None, v.one_line),
    },
    execute=execute,
    transition=transition,
)
