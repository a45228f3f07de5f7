"""A /proc/interrupts snapshot under a label, for counter checks."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..model.features import EXACT_ROWS
from ..model.prediction import Prediction, SnapshotPrediction
from ..model.state import Span
from ..model.timing import DUR_SNAPSHOT
from ..observations import Observations, StepRecord
from ..parsers import interrupts
from .base import Step, StepContext, StepType

if TYPE_CHECKING:
    from ..model.engine import Model


def execute(live: StepContext, step: Step, rec: StepRecord, obs: Observations, online: set[int]) -> None:
    con = live.con
    a = step.args
    res = con.run(["cat", "/proc/interrupts"], step.timeout)
    rec.status, rec.output = res.status, res.output
    rec.detail["label"] = a["label"]
    obs.snapshots[a["label"]] = interrupts.parse(res.output)


def transition(m: Model, p: Prediction, a: dict, step: Step) -> Span:
    if not m.console_cpus(p):
        return DUR_SNAPSHOT
    rows = m.features.ipi_rows()
    absent = [r for r in EXACT_ROWS if r not in rows]
    p.snapshot = SnapshotPrediction(str(a["label"]), m.state.online(), rows, absent)
    return DUR_SNAPSHOT


STEP = StepType(
    kind="snapshot",
    shorthand="label",
    fields={
        "label": (str, True, None, None),
    },
    execute=execute,
    transition=transition,
)
