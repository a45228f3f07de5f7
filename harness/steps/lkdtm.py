"""An LKDTM crash point written to provoke-crash/DIRECT, pinned to a CPU."""
from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from harness.expect.observations import Observations, StepRecord
from harness.model.prediction import REFUSED, UNMODELLED, Prediction
from harness.model.state import Span
from harness.model.timing import DUR_BACKGROUND, LKDTM_ANYWHERE
from harness.scenario.types import Step
from harness.steps import fields as v
from harness.steps.base import StepContext, StepType

if TYPE_CHECKING:
    from harness.model.engine import Model


def execute(live: StepContext, step: Step, rec: StepRecord, obs: Observations, online: set[int]) -> None:
    con = live.con
    a = step.args
    pin = ["taskset", "-c", str(a["cpu"])] if a["cpu"] is not None else []
    write = shlex.join([*pin, "sh", "-c", f"echo {a['crash']} > /sys/kernel/debug/provoke-crash/DIRECT"])
    if a["crash"] in v.LKDTM_BACKGROUND:
        # Never returns: run it in the background and let the kernel react.
        # The console shell first leaves that CPU: a task queued behind a
        # CPU spinning with interrupts or preemption off never runs again.
        stuck = {a["cpu"]} if a["cpu"] is not None else set()
        if a["crash"] == "SMP_CALL_LOCKUP" and stuck:
            # lkdtm cross-calls cpumask_any_but(online, cpu): that CPU spins too.
            stuck.add(min(online - stuck))
        others = sorted(online - stuck) if stuck else []
        move = f"taskset -p -c {','.join(map(str, others))} $$ >/dev/null; " if others else ""
        res = con.run(f"{move}{write} & echo lkdtm-pid $!", step.timeout)
    else:
        res = con.run(write, step.timeout)
    rec.status, rec.output = res.status, res.output
    con.settle()


def transition(m: Model, p: Prediction, a: dict, step: Step) -> Span:
    f, _st = m.features, m.state
    crash = str(a["crash"] or "").upper()
    cpu = a["cpu"]
    if not f.lkdtm:
        p.outcome = {REFUSED}
        p.status = {"at_least": 1}
        p.note("kernel without CONFIG_LKDTM: no /sys/kernel/debug/provoke-crash/DIRECT")
        return DUR_BACKGROUND
    background = crash in v.LKDTM_BACKGROUND
    if cpu is None:
        if crash in LKDTM_ANYWHERE:
            # the unpinned writer runs on any CPU that schedules
            cands = m.entry_cpus(p, None, "proc")
            if not cands:
                return DUR_BACKGROUND
            return m.branch(p, cands, lambda q, c: m.lkdtm(q, crash, c, pinned=False))
        p.outcome = {UNMODELLED}
        p.note(f"an unpinned {crash} may hit any CPU: pin it with cpu to model it")
        return DUR_BACKGROUND
    cpu = int(cpu)
    if not m.entry_cpus(p, cpu, "proc", background=background):
        return DUR_BACKGROUND
    return m.lkdtm(p, crash, cpu)


STEP = StepType(
    kind="lkdtm",
    shorthand="crash",
    fields={
        "crash": (str, True, None, v.crash_point),
        "cpu": (int, False, None, v.cpu),
    },
    execute=execute,
    transition=transition,
    crashes=lambda a: a["crash"] in v.LKDTM_CRASHING,
)
