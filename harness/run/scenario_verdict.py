"""The verdict of one scenario run and its files: the scenario's
expectations and the model's claims turned into checks and a verdict,
kernel reports nobody expected, and expectations.json, observations.json
and verdicts.json in the run's directory."""
from __future__ import annotations

import bisect
import json
import re
from typing import Callable

from harness.expect.checks import (
    ERROR,
    FAIL,
    FLAKY,
    MODEL,
    NOT_COMPARED,
    PASS,
    SKIP,
    CheckResult,
    evaluate,
    expected_of,
)
from harness.expect.allowed_reports import allowed
from harness.expect.observations import Observations
from harness.expect.result import ScenarioResult
from harness.parsers import reports
from harness.scenario.parse import IMPLICIT_CHECKS, REPORT_TYPES
from harness.scenario.types import Scenario


def judge(result: ScenarioResult, scn: Scenario, obs: Observations, model_checks: list[CheckResult],
          skipped: list[str], model_only: bool) -> None:
    """The verdict from the checks. Not-compared model claims are listed
    but count for nothing; with model_only, only the model's claims count."""
    wants_model = model_only or any(exp.kind == "model" for exp in scn.expect)
    if result.verdict == PASS:
        if not model_only:
            result.checks.extend(evaluate(exp, obs) for exp in scn.expect if exp.kind != "model")
    elif result.verdict == FAIL and not model_only:
        # Checks that could not be evaluated after a crash or hang are listed
        # as errors, so the report shows what was not verified.
        result.checks.extend(CheckResult(e.name, ERROR, expected_of(e), "not evaluated: " + result.reason)
                             for e in scn.expect if e.kind != "model")
    if wants_model and result.verdict in (PASS, FAIL):
        result.checks.extend(model_checks)
    # With model_only the scenario's expectations are left out, but not what
    # the runner saw the kernel do (crash, hang, no shell, missed bring-up):
    # a kernel that panicked used to pass with "0/0 model claims" (issue 19).
    counted = [c for c in result.checks if c.verdict != NOT_COMPARED
               and (not model_only or c.origin == MODEL or c.name in IMPLICIT_CHECKS)]
    if result.verdict in (PASS, FAIL) and model_only:
        result.verdict = PASS
    if result.verdict == PASS:
        if any(c.verdict == FAIL for c in counted):
            result.verdict = FAIL
        elif any(c.verdict == ERROR for c in counted):
            result.verdict = ERROR
        elif skipped:
            # A step the machine cannot do (inject-nmi on riscv) must not pass silently.
            result.verdict, result.reason = SKIP, "; ".join(skipped)
    if obs.boot_retries:
        note = "boot retried: " + "; ".join(r["reason"] for r in obs.boot_retries)
        result.reason = f"{result.reason}; {note}" if result.reason else note
    result.boot_retries = len(obs.boot_retries)
    if obs.boot_retries and result.verdict == PASS:
        # Passed only on a retry: neither a pass nor a kernel failure on its
        # own. The earlier attempts' console logs stay beside console.log.
        result.verdict = FLAKY
        result.retried_logs = [r["console_log"] for r in obs.boot_retries if r.get("console_log")]
    result.model_only = model_only


# Kernel reports judged when neither a scenario's expectations nor the model
# account for them (docs/scenarios.md, "Reports nobody expected"). lkdtm's
# own "Performing direct entry" lines are the steps' doing. A report fails
# the check unless the project-wide allow-list (expect/allowed_reports.py)
# names its type and title, with the reason and the evidence.
LISTED_REPORT_TYPES = frozenset(REPORT_TYPES) - {"none", "lkdtm"}
UNEXPECTED_CHECK = "no unexpected kernel report"


def unexpected_reports(result: ScenarioResult, scn: Scenario, obs: Observations,
                       predicted: list[str], model_only: bool) -> None:
    """List every kernel report the console holds that no expectation names
    and the model does not predict, and state the check "no unexpected
    kernel report" in every judged run: it fails on any such report the
    allow-list does not name."""
    if not obs.console or result.verdict not in (PASS, FAIL, FLAKY):
        return
    lines, found = obs.kernel_reports()
    step_at = _step_of_line(obs)
    failing, excused = [], []
    for rep in found:
        if rep.type not in LISTED_REPORT_TYPES:
            continue
        text = rep.text(lines)
        named = any(_excuses(e.args, rep, step_at(rep.first_line)) for e in scn.expect if e.kind == "report") or any(
            e.kind == "console" and e.args["present"] and re.search(e.args["present"], text, re.MULTILINE)
            for e in scn.expect)
        foreseen = any(re.search(p, text, re.MULTILINE) for p in predicted)
        if named or foreseen:
            continue
        seen = f"{rep.type} on CPU {rep.cpu}: {rep.title}"
        result.unexpected_reports.append(seen)
        entry = allowed(rep.type, rep.title)
        if entry is None:
            failing.append(seen)
        else:
            excused.append(f"{seen} (allowed: {entry.reason.split(':')[0]}; {entry.evidence.split(';')[0]})")
    if model_only:
        return
    expected = "every kernel report named by an expectation, predicted by the model or on the allow-list"
    if failing:
        result.checks.append(CheckResult(UNEXPECTED_CHECK, FAIL, expected,
                                         "; ".join(failing + excused)[:2000]))
        if result.verdict in (PASS, FLAKY):
            result.verdict = FAIL
    else:
        result.checks.append(CheckResult(UNEXPECTED_CHECK, PASS, expected,
                                         "; ".join(excused)[:2000] or "none"))


def _excuses(args: dict, rep: reports.Report, step: str | None) -> bool:
    """A report expectation excuses a report of its type on the CPU and in
    the step it names (either, when it names none): `report: {type:
    csd-lock, cpu: 0}` used to excuse csd-lock reports from every CPU."""
    return (args["type"] == rep.type and (args["cpu"] is None or args["cpu"] == rep.cpu)
            and (args["step"] is None or args["step"] == step))


def _step_of_line(obs: Observations) -> Callable[[int], str | None]:
    """The step whose console window holds console line n (1-based, as
    klog numbers them), or None (booting, or after the last step)."""
    starts = [0] + [m.end() for m in re.finditer("\n", obs.console)]
    spans = sorted((rec.start, rec.end, name) for name, rec in obs.steps.items())

    def step_at(n: int) -> str | None:
        at = starts[min(max(n - 1, 0), len(starts) - 1)]
        i = bisect.bisect_right(spans, (at, float("inf"), "")) - 1
        return spans[i][2] if i >= 0 and spans[i][0] <= at < spans[i][1] else None
    return step_at


def write_artifacts(result: ScenarioResult, obs: Observations | None) -> None:
    """expectations.json, observations.json (when there are observations)
    and verdicts.json in the result's artifacts directory."""
    out = result.artifacts
    assert out is not None
    scn = result.scenario
    (out / "expectations.json").write_text(json.dumps(
        [{"name": e.name, "kind": e.kind, "expected": expected_of(e),
          "line": e.where.line} for e in scn.expect], indent=2))
    if obs is not None:
        (out / "observations.json").write_text(json.dumps(obs.to_json(), indent=2))
    (out / "verdicts.json").write_text(json.dumps({
        "scenario": scn.name, "file": str(scn.path), "kernel": result.kernel,
        "verdict": result.verdict, "reason": result.reason, "summary": result.summary(),
        "boot_retries": result.boot_retries, "model_only": result.model_only,
        "unexpected_reports": result.unexpected_reports,
        "seconds": round(result.seconds, 2),
        "checks": [c.to_json() for c in result.checks]}, indent=2))
