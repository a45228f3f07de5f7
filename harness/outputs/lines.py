"""The terminal's words: one line per scenario, the failures under it, and
the summary line ('3 passed, ...; 3/3 expectations, 52/52 model claims')."""
from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Iterable, TextIO

from harness.expect.checks import ERROR, FAIL, FLAKY, PASS, SKIP
from harness.outputs.results import EXPECTATION, MODEL, SavedRun, origin

if TYPE_CHECKING:
    from harness.expect.result import ScenarioResult

_LABEL = {PASS: "PASS", FAIL: "FAIL", SKIP: "SKIP", ERROR: "ERROR", FLAKY: "FLAKY"}
NOT_COMPARED = "not-compared"     # a model claim the kernel's output cannot settle


def _checks(r: "ScenarioResult | SavedRun") -> list[dict]:
    return [c if isinstance(c, dict) else c.to_json() for c in r.checks]


def _name(r: "ScenarioResult | SavedRun") -> str:
    return r.scenario if isinstance(r.scenario, str) else r.scenario.name


def origin_counts(checks: list[dict]) -> str:
    """'3/3 expectations, 52/52 model claims (4 not compared)': passed out
    of judged, per origin; a claim not compared is not judged."""
    parts = []
    for which, label in ((EXPECTATION, "expectations"), (MODEL, "model claims")):
        mine = [c for c in checks if origin(c) == which and c["verdict"] != NOT_COMPARED]
        parts.append(f"{sum(c['verdict'] == PASS for c in mine)}/{len(mine)} {label}")
    text = ", ".join(parts)
    nc = sum(c["verdict"] == NOT_COMPARED for c in checks)
    return text + (f" ({nc} not compared)" if nc else "")


def _counts(r: "ScenarioResult | SavedRun") -> str:
    summary = getattr(r, "summary", None)
    if callable(summary):
        return summary()          # ScenarioResult says it all (retries, unexpected reports)
    text = origin_counts(_checks(r))
    retries = getattr(r, "boot_retries", 0)
    return text + (f", boot retried {retries}x" if retries else "")


def scenario_line(r: "ScenarioResult | SavedRun") -> str:
    line = f"{_LABEL[r.verdict]:5} {_name(r)} [{r.kernel}] {_counts(r)} {r.seconds:.1f}s"
    if r.reason:
        line += f" - {r.reason.splitlines()[0]}"
    return line


def print_result(r: "ScenarioResult | SavedRun", out: TextIO) -> None:
    print(scenario_line(r), file=out)
    for c in _checks(r):
        if c["verdict"] not in (FAIL, ERROR):
            continue
        step = f" (step '{c['step']}')" if c.get("step") else ""
        observed = c["observed"].splitlines()[0] if c["observed"] else ""
        print(f"      {c['verdict']}: {c['name']}{step}: expected {c['expected']}; observed {observed}",
              file=out)
    log = r.console_log
    if r.verdict in (FAIL, ERROR, FLAKY) and log is not None and log.exists():
        print(f"      console log: {log}", file=out)
    if r.verdict == FLAKY and r.artifacts is not None:
        for kept in sorted(r.artifacts.glob("console-*.log")):
            print(f"      retried attempt's console log: {kept}", file=out)


def summary_line(results: Iterable["ScenarioResult | SavedRun"]) -> str:
    results = list(results)
    n = Counter(r.verdict for r in results)
    checks = [c for r in results for c in _checks(r)]
    line = (f"{n[PASS]} passed, {n[FAIL]} failed, {n[SKIP]} skipped, {n[ERROR]} errors; "
            f"{origin_counts(checks)}")
    if n[FLAKY]:
        # last, so that scripts reading "N passed, N failed, ..." keep working
        line += f"; {n[FLAKY]} flaky (passed only on a retry)"
    retried = sum(getattr(r, "boot_retries", 0) > 0 for r in results)
    if retried:
        line += f"; {retried} boot{'s' if retried > 1 else ''} retried"
    return line
