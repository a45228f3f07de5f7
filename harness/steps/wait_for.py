"""Wait for a console line (it may already have gone by)."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

from harness.core.errors import ConsoleTimeout
from harness.expect.observations import Observations, StepRecord
from harness.model.prediction import Prediction
from harness.model.state import Span
from harness.scenario.types import Step
from harness.steps import fields as v
from harness.steps.base import StepContext, StepType

if TYPE_CHECKING:
    from harness.model.engine import Model


def execute(live: StepContext, step: Step, rec: StepRecord, obs: Observations, online: set[int]) -> None:
    con = live.con
    a = step.args
    # The line may already have gone by (e.g. during a long sysrq step).
    seen = re.search(a["pattern"], con.text(), re.MULTILINE)
    if seen is None:
        try:
            con.expect([a["pattern"]], step.timeout, f"/{a['pattern']}/")
            seen = True
        except ConsoleTimeout:
            seen = None
    rec.status = 0 if seen else 1
    rec.detail["matched"] = bool(seen)
    con.settle(quiet=0.3)   # the rest of the report the line starts


def transition(m: Model, p: Prediction, a: dict, step: Step) -> Span:
    # Waiting for a console line changes nothing; it only lets time pass
    # (up to the step's timeout), which the detectors' timing depends on.
    # When the line is one the model expects a detector to print in that
    # time, the step ends with it: the line is certain by the step's end
    # (without this the model could only say a csd report "may" appear, and
    # a kernel that never prints it passed: docs/model.md, the proof).
    start = m.state.clock
    ev = m.awaited(str(a["pattern"]), start, float(step.timeout))
    if ev is None:
        return Span(0.0, float(step.timeout))
    p.note(f"the step ends when the kernel prints /{ev.pattern}/ ({ev.why})")
    m.awaiting = ev.key
    return Span(max(0.0, ev.earliest - start.hi), max(0.0, ev.latest - start.lo))


def verify(step: Step, rec: StepRecord) -> tuple[str, str] | None:
    if rec.detail["matched"]:
        return None
    return f"/{step.args['pattern']}/ within {step.timeout:g} s", "not printed"


STEP = StepType(
    kind="wait_for",
    shorthand="pattern",
    fields={
        "pattern": (str, True, None, v.regex),
    },
    execute=execute,
    transition=transition,
    verify=verify,
)
