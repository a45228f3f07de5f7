"""Magic sysrq: written to /proc/sysrq-trigger on a chosen CPU, or sent as a serial BREAK."""
from __future__ import annotations

from typing import TYPE_CHECKING

from harness.expect.observations import Observations, StepRecord
from harness.model.prediction import MUST, UNSUPPORTED, Prediction
from harness.model.state import Span
from harness.model.timing import DUR_CONSOLE, DUR_SYSRQ
from harness.scenario.types import Step
from harness.steps import fields as v
from harness.steps.base import StepContext, StepType

if TYPE_CHECKING:
    from harness.model.engine import Model


def execute(live: StepContext, step: Step, rec: StepRecord, obs: Observations, online: set[int]) -> None:
    con = live.con
    a = step.args
    if a["via"] == "break":
        con.serial_break(a["key"])
        con.settle(quiet=0.5, limit=step.timeout)
    else:
        res = con.sysrq(a["key"], a["cpu"], step.timeout)
        rec.status = res.status


def transition(m: Model, p: Prediction, a: dict, step: Step) -> Span:
    f = m.features
    key, cpu, via = str(a["key"]), a["cpu"], a["via"] or "proc"
    if not f.magic_sysrq:
        p.outcome = {UNSUPPORTED}
        p.note("kernel without CONFIG_MAGIC_SYSRQ")
        return DUR_CONSOLE
    if via == "break" and cpu is not None:
        p.note("via break: the handler runs on the CPU that takes the UART interrupt, not on 'cpu'")
    candidates = m.entry_cpus(p, cpu if via == "proc" else None, via)
    if not candidates:
        return DUR_CONSOLE
    if key == "l":
        p.expect_console("sysrq-l", r"sysrq: Show backtrace of all active CPUs", MUST, basis="both")
        return m.branch(p, candidates, lambda q, s: m.sysrq_l(q, s, via))
    if key == "g":
        p.expect_console("sysrq-g", r"sysrq: DEBUG", MUST)
        p.note("sysrq g outside a kdb step: the machine stays in kdb (nobody types go)")
        return m.branch(p, candidates,
                            lambda q, s: m.kdb_session(q, s, via, [], False, leave=False))
    if key == "c":
        p.expect_console("sysrq-c", r"sysrq: Trigger a crash", MUST)
        return m.branch(p, candidates, lambda q, s: m.panic(q, s, "sysrq triggered crash"))
    p.note(f"sysrq '{key}' moves no IPI counter the model knows of")
    return DUR_SYSRQ


STEP = StepType(
    kind="sysrq",
    shorthand="key",
    fields={
        "key": (str, True, None, v.sysrq_key),
        "cpu": (int, False, None, v.cpu),
        "via": (str, False, "proc", v.via),
    },
    execute=execute,
    transition=transition,
)
