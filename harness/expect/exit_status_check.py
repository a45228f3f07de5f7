"""exit_status: the exit status of a step's shell command."""
from __future__ import annotations

from typing import Any, Mapping

from harness.expect.kind import ExpectationKind, Outcome, check_step
from harness.expect.observations import Observations
from harness.expect.verdicts import ERROR, FAIL, PASS


def expected(a: Mapping[str, Any]) -> str:
    return f"step '{a['step']}' exits {a['status']}"


def evaluate(a: dict, obs: Observations) -> Outcome:
    rec = obs.steps.get(a["step"])
    if rec is None or rec.status is None:
        return ERROR, f"step '{a['step']}' has no exit status", a["step"]
    return (PASS if rec.status == a["status"] else FAIL), f"exit status {rec.status}", a["step"]


KIND = ExpectationKind(
    kind="exit_status",
    fields={
        "step": (str, True, None, None),
        "status": (int, True, None, None),
    },
    expected=expected,
    evaluate=evaluate,
    validate=check_step,
)
