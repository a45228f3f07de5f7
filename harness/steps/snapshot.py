"""A /proc/interrupts snapshot under a label, for counter checks."""
from __future__ import annotations

from typing import TYPE_CHECKING

from harness.expect.observations import Observations, StepRecord
from harness.model.features import EXACT_ROWS
from harness.model.prediction import Prediction, SnapshotPrediction
from harness.model.state import Span
from harness.model.timing import DUR_SNAPSHOT
from harness.parsers import interrupts
from harness.scenario.types import Step
from harness.steps.base import StepContext, StepType

if TYPE_CHECKING:
    from harness.model.engine import Model


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
