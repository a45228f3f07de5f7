"""The terminal's words: one line per scenario, the failures under it, and
the summary line ('3 passed, ...; 3/3 expectations, 52/52 model claims')."""
from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, Iterable, TextIO

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


def pct(rate: float, sign: str = "%") -> str:
    """A rate in whole percent, with one decimal where rounding would make
    it 0 or 100 when it is not."""
    x = rate * 100
    return f"{x:.1f}{sign}" if 0 < x < 0.5 or 99.5 <= x < 100 else f"{x:.0f}{sign}"


def count_line(c: dict[str, Any]) -> str:
    """'name: failed 2/5 (40%, 95% CI 5–85%)' from a check's counts in
    repeats.json (harness/run/attempts.py)."""
    low, high = c["ci95"]
    return f"{c['name']}: failed {c['failed']}/{c['runs']} ({pct(c['rate'])}, 95% CI {pct(low, '')}–{pct(high)})"


def seen_line(runs: int, rate: float) -> str:
    """What runs without a failure rule out: '0/5 failed: a failure rate
    of 45% or more would have shown with 95% probability'."""
    return f"0/{runs} failed: a failure rate of {pct(rate)} or more would have shown with 95% probability"


def repeats_counts(doc: dict[str, Any], boot_retries: int = 0) -> str:
    """'2/5 runs failed' (run --repeats), and the runs that said nothing."""
    text = f"{doc['failed']}/{doc['judged']} runs failed"
    if doc["not_judged"]:
        text += f", {doc['not_judged']} of {doc['runs']} not judged (skipped or infrastructure)"
    return text + (f", boot retried {boot_retries}x" if boot_retries else "")


def _counts(r: "ScenarioResult | SavedRun") -> str:
    summary = getattr(r, "summary", None)
    if callable(summary):
        return summary()          # ScenarioResult says it all (retries, unexpected reports)
    if getattr(r, "repeats", None):
        return repeats_counts(r.repeats, r.boot_retries)
    text = origin_counts(_checks(r))
    retries = getattr(r, "boot_retries", 0)
    return text + (f", boot retried {retries}x" if retries else "")


def scenario_line(r: "ScenarioResult | SavedRun") -> str:
    line = f"{_LABEL[r.verdict]:5} {_name(r)} [{r.kernel}] {_counts(r)} {r.seconds:.1f}s"
    if r.reason:
        line += f" - {r.reason.splitlines()[0]}"
    return line


def _print_repeats(r: "ScenarioResult | SavedRun", doc: dict[str, Any], out: TextIO) -> None:
    """Under a --repeats scenario's line: each check that failed at least
    once with its counts and interval, what the others rule out, and every
    attempt's console logs unless all passed."""
    for c in doc["checks"]:
        if c["failed"]:
            print(f"      {count_line(c)}", file=out)
    clean = [c for c in doc["checks"] if c["runs"] and not c["failed"]]
    groups = sorted({c["runs"] for c in clean}, reverse=True)     # checks judged in fewer runs apart
    failed = any(c["failed"] for c in doc["checks"])
    for runs in groups:
        same = [c for c in clean if c["runs"] == runs]
        who = f"every check ({len(same)})" if not failed and len(groups) == 1 else \
            f"{len(same)} {'other ' if failed else ''}check{'s' if len(same) > 1 else ''}"
        print(f"      {who}: {seen_line(runs, same[0]['rate_seen_95'])}", file=out)
    if r.verdict == PASS or r.artifacts is None:
        return
    for a in doc["attempts"]:
        for log in a["console_logs"]:
            print(f"      run {a['run']} ({a['sample']}) console log: {r.artifacts / log}", file=out)


def print_result(r: "ScenarioResult | SavedRun", out: TextIO) -> None:
    print(scenario_line(r), file=out)
    if getattr(r, "repeats", None):
        _print_repeats(r, r.repeats, out)
        return
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
        repeated = any(getattr(r, "repeats", None) for r in results)
        line += f"; {n[FLAKY]} flaky ({'passed and failed over the repeats, or ' if repeated else ''}" \
                "passed only on a retry)"
    retried = sum(getattr(r, "boot_retries", 0) > 0 for r in results)
    if retried:
        line += f"; {retried} boot{'s' if retried > 1 else ''} retried"
    return line
