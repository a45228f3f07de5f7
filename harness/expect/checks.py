"""Evaluating a scenario's expectations against what was observed. Every
result says what was expected and what was observed. Each kind's text and
evaluation live in its own module (expect/<kind>_check.py); this module
dispatches through kinds_registry.EXPECTATION_KINDS and re-exports the
verdicts (expect/verdicts.py) its importers take from here."""
from __future__ import annotations

from harness.expect.kinds_registry import EXPECTATION_KINDS
from harness.expect.observations import Observations
from harness.expect.verdicts import (
    ERROR,
    EXPECTATION,
    FAIL,
    FLAKY,
    MODEL,
    NOT_COMPARED,
    PASS,
    SKIP,
    CheckResult,
)
from harness.scenario.types import Expectation

__all__ = ["ERROR", "EXPECTATION", "FAIL", "FLAKY", "MODEL", "NOT_COMPARED", "PASS", "SKIP",
           "CheckResult", "evaluate", "expected_of"]


def expected_of(exp: Expectation, obs: Observations | None = None) -> str:
    kind = EXPECTATION_KINDS.get(exp.kind)
    return kind.expected(exp.args) if kind is not None else exp.kind


def evaluate(exp: Expectation, obs: Observations) -> CheckResult:
    judge = EXPECTATION_KINDS[exp.kind].evaluate
    if judge is None:       # model: crosscheck.py compares the model's claims
        raise KeyError(exp.kind)
    verdict, observed, step = judge(exp.args, obs)
    return CheckResult(exp.name, verdict, expected_of(exp), observed, step)
