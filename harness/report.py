"""Output formats: one console line per scenario, the summary line, JUnit XML
(one testsuite per kernel, one testcase per check)."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Iterable, TextIO

from junit_xml import TestCase, TestSuite, to_xml_report_string

from .checks import ERROR, FAIL, NOT_COMPARED, PASS, SKIP
from .runner import ScenarioResult

_LABEL = {PASS: "PASS", FAIL: "FAIL", SKIP: "SKIP", ERROR: "ERROR"}


def scenario_line(r: ScenarioResult) -> str:
    line = f"{_LABEL[r.verdict]:5} {r.scenario.name} [{r.kernel}] {r.summary()} {r.seconds:.1f}s"
    if r.reason:
        line += f" - {r.reason.splitlines()[0]}"
    return line


def print_result(r: ScenarioResult, out: TextIO) -> None:
    print(scenario_line(r), file=out)
    for c in r.failures():
        step = f" (step '{c.step}')" if c.step else ""
        print(f"      {c.verdict}: {c.name}{step}: expected {c.expected}; observed "
              f"{c.observed.splitlines()[0] if c.observed else ''}", file=out)
    if r.verdict in (FAIL, ERROR) and r.console_log is not None and r.console_log.exists():
        print(f"      console log: {r.console_log}", file=out)


def summary_line(results: Iterable[ScenarioResult]) -> str:
    results = list(results)
    n = Counter(r.verdict for r in results)
    line = f"{n[PASS]} passed, {n[FAIL]} failed, {n[SKIP]} skipped, {n[ERROR]} errors"
    retried = sum(r.boot_retries > 0 for r in results)
    if retried:
        line += f"; {retried} boot{'s' if retried > 1 else ''} retried"
    return line


def _console(r: ScenarioResult) -> str:
    log = r.console_log
    if log is None or not log.exists():
        return ""
    return log.read_text(errors="replace").replace("\r", "")


def junit(results: list[ScenarioResult]) -> str:
    suites: dict[str, list[TestCase]] = {}
    for r in results:
        cases = suites.setdefault(r.kernel, [])
        console = _console(r)
        classname = f"{r.kernel}.{r.scenario.name}"
        retried = f"boot retried {r.boot_retries}x: {r.reason}" if r.boot_retries else ""
        if r.verdict == SKIP:
            tc = TestCase(r.scenario.name, classname, r.seconds, file=str(r.scenario.path))
            tc.add_skipped_info(r.reason)
            cases.append(tc)
            continue
        if r.verdict == ERROR and not r.checks:
            tc = TestCase(r.scenario.name, classname, r.seconds, stdout=console,
                          file=str(r.scenario.path))
            tc.add_error_info(r.reason.splitlines()[0] if r.reason else "error", r.reason)
            cases.append(tc)
            continue
        for c in r.checks:
            # The model's claims apart from the scenario's own expectations.
            tc = TestCase(c.name, f"{classname}.{c.origin}", r.seconds / max(1, len(r.checks)),
                          stdout=console, stderr=retried or None, file=str(r.scenario.path))
            if c.verdict == NOT_COMPARED:
                tc.add_skipped_info(c.observed)
            text = f"expected: {c.expected}\nobserved: {c.observed}"
            if c.step:
                text = f"step: {c.step}\n" + text
            if c.verdict == FAIL:
                tc.add_failure_info(f"expected {c.expected}; observed {c.observed.splitlines()[0] if c.observed else ''}", text)
            elif c.verdict == ERROR:
                tc.add_error_info(c.observed.splitlines()[0] if c.observed else "error", text)
            cases.append(tc)
    return to_xml_report_string([TestSuite(k, v) for k, v in suites.items()])


def write_summary(results: list[ScenarioResult], path: Path) -> None:
    path.write_text(json.dumps([{
        "scenario": r.scenario.name, "kernel": r.kernel, "verdict": r.verdict,
        "reason": r.reason, "seconds": round(r.seconds, 2),
        "artifacts": str(r.artifacts) if r.artifacts else None,
        "checks": [c.to_json() for c in r.checks]} for r in results], indent=2))
