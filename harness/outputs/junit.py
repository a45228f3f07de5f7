"""JUnit XML that CI servers render: one <testsuite> per scenario run
(kernel/scenario), one <testcase> per check.

Size is what matters to Jenkins and GitLab (a run once wrote 12.5 MB: the
17 KB console log in each of 681 testcases). Here the console appears once
per scenario, in the suite's <system-out>, cut to its tail and pointing at
the whole log with [[ATTACHMENT|path]] (the convention of Jenkins'
junit-attachments plugin and of GitLab); a failure carries only the lines
around what failed. The classname keeps the check's origin apart:
<kernel>.<scenario>.expectations or <kernel>.<scenario>.model.

The output validates against the JUnit schema Jenkins' xunit plugin
publishes (tests/data/junit-10.xsd), which has no per-testcase properties:
the suite's <properties> hold the verdict and the counts."""
from __future__ import annotations

import re

from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite
from junitparser.junitparser import SystemOut

from ..checks import ERROR, FAIL, SKIP
from .excerpt import locate
from .results import EXPECTATION, MODEL, Run, origin
from .terminal import origin_counts

# All the console tails of one file share this many characters, and no
# scenario gets more than CONSOLE_MAX: 50 runs keep 2.4 KB each.
CONSOLE_BUDGET = 120_000
CONSOLE_MAX = 6_000
_CLASS = {EXPECTATION: "expectations", MODEL: "model"}
# XML 1.0 cannot carry most control characters (a console may hold any).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("?", text)


def _ident(name: str) -> str:
    # Jenkins splits a classname at its dots into package and class.
    return re.sub(r"[^A-Za-z0-9_+-]", "_", name)


def attachment(run: Run) -> str:
    log = run.console_log
    return f"[[ATTACHMENT|{log.resolve()}]]" if log is not None else "(no console log was kept)"


def _console_tail(run: Run, chars: int) -> str:
    text = run.console
    if len(text) <= chars:
        return text
    cut = text[-chars:]
    cut = cut[cut.find("\n") + 1:]
    return f"[... {len(text) - len(cut)} earlier characters in the attached console.log ...]\n{cut}"


def _failure_text(run: Run, check: dict) -> str:
    text = (f"expected: {check['expected']}\nobserved: {check['observed']}"[:4000])
    if check.get("step"):
        text = f"step: {check['step']}\n{text}"
    where = locate(run.console, check, run.observations)
    if where is not None:
        lines = run.console.split("\n")
        lo, quoted = where.quote(lines)
        text += f"\n\nconsole.log lines {lo + 1}-{lo + len(quoted)}:\n"
        text += "\n".join(f"{lo + 1 + i:6}{'>' if where.first <= lo + i <= where.last else ' '} {l}"
                          for i, l in enumerate(quoted))
    return f"{text}\n{attachment(run)}"


def _suite(run: Run, console_chars: int) -> TestSuite:
    suite = TestSuite(f"{run.kernel}/{run.scenario}")
    suite.add_property("kernel", run.kernel)
    suite.add_property("scenario", run.scenario)
    suite.add_property("verdict", run.verdict)
    suite.add_property("checks", origin_counts(run.checks))
    if run.file:
        suite.add_property("file", run.file)
    if run.artifacts is not None:
        suite.add_property("artifacts", str(run.artifacts.resolve()))
    base = f"{_ident(run.kernel)}.{_ident(run.scenario)}"
    cases = []
    if not run.checks:
        # Skipped, or an error before any check could run.
        tc = TestCase("scenario", f"{base}.expectations", run.seconds)
        if run.verdict == SKIP:
            tc.result = [Skipped(_clean(run.reason or "skipped"))]
        elif run.verdict in (ERROR, FAIL):
            res = (Error if run.verdict == ERROR else Failure)(_clean((run.reason or run.verdict).splitlines()[0]))
            res.text = _clean(f"{run.reason}\n{attachment(run)}")
            tc.result = [res]
        cases.append(tc)
    for c in run.checks:
        tc = TestCase(_clean(c["name"]), f"{base}.{_CLASS[origin(c)]}",
                      run.seconds / max(1, len(run.checks)))
        if c["verdict"] in (FAIL, ERROR):
            first = c["observed"].splitlines()[0] if c["observed"] else ""
            res = (Failure if c["verdict"] == FAIL else Error)(
                _clean(f"expected {c['expected']}; observed {first}"[:500]))
            res.text = _clean(_failure_text(run, c))
            tc.result = [res]
        elif c["verdict"] == SKIP:
            tc.result = [Skipped(_clean(c["observed"][:500]))]
        cases.append(tc)
    suite.add_testcases(cases)
    suite.time = round(run.seconds, 3)
    out = f"{attachment(run)}\n{_console_tail(run, console_chars)}" if run.console else attachment(run)
    suite.append(SystemOut(_clean(out)))
    suite.update_statistics()
    return suite


def render(runs: list[Run]) -> str:
    per_run = min(CONSOLE_MAX, CONSOLE_BUDGET // max(1, len(runs)))
    xml = JUnitXml("rvharness")
    for run in runs:
        xml.add_testsuite(_suite(run, per_run))
    xml.update_statistics()
    # The xunit plugin's schema allows no 'skipped' count on <testsuites>
    # (only on each <testsuite>), where junitparser puts one.
    xml._elem.attrib.pop("skipped", None)
    text = xml.tostring()
    return '<?xml version="1.0" encoding="utf-8"?>\n' + (text.decode() if isinstance(text, bytes) else text) + "\n"
