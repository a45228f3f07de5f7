"""A shell command on the guest console; its exit status is checked."""
from __future__ import annotations

from typing import TYPE_CHECKING

from harness.expect.observations import Observations, StepRecord
from harness.model.prediction import Prediction
from harness.model.state import Span
from harness.model.timing import DUR_CONSOLE
from harness.scenario.types import Step
from harness.steps import fields as v
from harness.steps.base import StepContext, StepType

if TYPE_CHECKING:
    from harness.model.engine import Model


def execute(live: StepContext, step: Step, rec: StepRecord, obs: Observations, online: set[int]) -> None:
    con = live.con
    a = step.args
    res = con.run(a["command"], step.timeout)
    rec.status, rec.output = res.status, res.output


def transition(m: Model, p: Prediction, a: dict, step: Step) -> Span:
    if not m.console_cpus(p):
        return DUR_CONSOLE
    m.opaque(p)
    return DUR_CONSOLE


def verify(step: Step, rec: StepRecord) -> tuple[str, str] | None:
    if rec.status == step.args["status"]:
        return None
    return f"exit status {step.args['status']}", f"exit status {rec.status}: {rec.output.strip()[-300:]}"


STEP = StepType(
    kind="shell",
    shorthand="command",
    fields={
        "command": (str, True, None, v.one_line),
        "status": (int, False, 0, None),
    },
    execute=execute,
    transition=transition,
    verify=verify,
)
