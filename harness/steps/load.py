"""A busy loop pinned to a CPU, in the background."""
from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from harness.expect.observations import Observations, StepRecord
from harness.model.prediction import UNMODELLED, Prediction
from harness.model.state import Load, Span
from harness.model.timing import DUR_BACKGROUND
from harness.scenario.types import Step
from harness.steps import fields as v
from harness.steps.base import StepContext, StepType

if TYPE_CHECKING:
    from harness.model.engine import Model


def execute(live: StepContext, step: Step, rec: StepRecord, obs: Observations, online: set[int]) -> None:
    con = live.con
    a = step.args
    loop = shlex.join(["taskset", "-c", str(a["cpu"]), "sh", "-c", "while :; do :; done"])
    if a["seconds"] is not None:
        loop = f"timeout {a['seconds']:g} {loop}"
    res = con.run(f"{loop} >/dev/null 2>&1 & echo load-pid $!", step.timeout)
    rec.status, rec.output = res.status, res.output


def transition(m: Model, p: Prediction, a: dict, step: Step) -> Span:
    st = m.state
    cpu = a["cpu"]
    if cpu is None:
        p.outcome = {UNMODELLED}
        p.note("load needs a cpu")
        return DUR_BACKGROUND
    if not m.entry_cpus(p, int(cpu), "proc", background=True):
        return DUR_BACKGROUND
    start = st.clock + DUR_BACKGROUND
    seconds = a.get("seconds")
    end = start + float(seconds) if seconds else None
    st.loads.append(Load(int(cpu), start, end, p.name, m._index))
    return DUR_BACKGROUND


STEP = StepType(
    kind="load",
    shorthand="cpu",
    fields={
        "cpu": (int, True, None, v.cpu),
        "seconds": (v.NUM, False, None, v.seconds),
    },
    execute=execute,
    transition=transition,
)
