"""JUnit XML that CI servers render: one <testsuite> per scenario run
(kernel/scenario), one <testcase> per expectation of the scenario and one
for the reference model's claims.

Size is what matters to Jenkins and GitLab (a run once wrote 12.5 MB: the
17 KB console log in each of 681 testcases). Here the console appears once
per scenario: the suite's <system-out> attaches the whole log with
[[ATTACHMENT|path]] (the convention of Jenkins' junit-attachments plugin
and of GitLab) and, for a failed run, quotes its tail; a failure carries
the lines around what failed. The classname keeps the check's origin apart:
<kernel>.<scenario>.expectations or <kernel>.<scenario>.model.

The output validates against the JUnit schema Jenkins' xunit plugin
publishes (tests/data/junit-10.xsd), which has no per-testcase properties:
the suite's <properties> hold the verdict and the counts."""
from __future__ import annotations

import re

from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite
from junitparser.junitparser import SystemOut

from harness.expect.checks import ERROR, FAIL, SKIP
from harness.outputs.lines import origin_counts
from harness.outputs.results import EXPECTATION, MODEL, Run

# The console tails of the failed runs share this many characters; no run
# gets more than CONSOLE_MAX. A passing run's log is only attached.
CONSOLE_BUDGET = 50_000
CONSOLE_MAX = 8_000
# The failure texts share this many characters in the same way, so that
# with the testcases themselves (about 1 KB per run) a matrix of 80 runs
# with every other one failing stays under 200 KB.
FAILURE_BUDGET = 50_000
FAILURE_MAX = 4_000
FAILURE_MIN = 400
MODEL_CASE = "model: every claim holds"
LISTED_CLAIMS = 40
LINE_MAX = 200
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


def _failure_text(run: Run, check: dict, limit: int) -> str:
    """expected, observed, the console lines around what failed (marked
    '>'), and the log's attachment, in at most about limit characters:
    fewer lines of context first, then a shorter quote."""
    head = f"expected: {check['expected']}\nobserved: {check['observed']}"[:max(200, limit // 3)]
    if check.get("step"):
        head = f"step: {check['step']}\n{head}"
    tail = f"\n{attachment(run)}"
    where = run.locate(check)
    if where is None:
        return head + tail
    lines = run.console.split("\n")
    for context, most in ((3, 30), (2, 16), (1, 8), (0, 4), (0, 1)):
        lo, quoted = where.quote(lines, context, most)
        quote = f"\n\nconsole.log lines {lo + 1}-{lo + len(quoted)}:\n" + "\n".join(
            f"{lo + 1 + i:6}{'>' if where.first <= lo + i <= where.last else ' '} {l[:LINE_MAX]}"
            for i, l in enumerate(quoted))
        if len(head) + len(quote) + len(tail) <= limit:
            return head + quote + tail
    return head + quote + tail


def _model_case(run: Run, base: str, limit: int) -> TestCase | None:
    """The model's claims as one testcase: a run holds 50 or more of them,
    and one testcase each made a matrix's JUnit 500 KB. Failing claims are
    listed in its failure, the first with its console lines; every claim,
    passing or not, is in the run's verdicts.json and report.html."""
    claims = run.by_origin(MODEL)
    if not claims:
        return None
    tc = TestCase(MODEL_CASE, f"{base}.model", 0.0)
    bad = [c for c in claims if c["verdict"] in (FAIL, ERROR)]
    if bad:
        parts = [f"--- {bad[0]['name']}\n" + _failure_text(run, bad[0], limit // 2)]
        used = len(parts[0])
        for c in bad[1:LISTED_CLAIMS]:
            part = f"--- {c['name']}\n{c['observed']}"[:300]
            if used + len(part) > limit:
                break
            parts.append(part)
            used += len(part)
        if len(parts) < len(bad):
            parts.append(f"... {len(bad) - len(parts)} more in verdicts.json")
        res = (Failure if any(c["verdict"] == FAIL for c in bad) else Error)(
            _clean(f"{len(bad)} of {len(claims)} model claims disagree with the kernel: "
                   + "; ".join(c["name"] for c in bad[:3]))[:500])
        res.text = _clean("\n\n".join(parts))
        tc.result = [res]
    return tc


def _suite(run: Run, console_chars: int, failure_chars: int) -> TestSuite:
    suite = TestSuite(f"{run.kernel}/{run.scenario}")
    if run.file:
        suite._elem.set("file", run.file)
    suite.add_property("verdict", run.verdict)
    suite.add_property("checks", origin_counts(run.checks))
    if run.boot_retries:
        suite.add_property("boot", f"boot retried {run.boot_retries}x: {run.reason}")
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
    own = run.by_origin(EXPECTATION)
    for c in own:
        tc = TestCase(_clean(c["name"]), f"{base}.expectations", round(run.seconds / max(1, len(own)), 3))
        if c["verdict"] in (FAIL, ERROR):
            first = c["observed"].splitlines()[0] if c["observed"] else ""
            res = (Failure if c["verdict"] == FAIL else Error)(
                _clean(f"expected {c['expected']}; observed {first}"[:500]))
            res.text = _clean(_failure_text(run, c, failure_chars))
            tc.result = [res]
        elif c["verdict"] == SKIP:
            tc.result = [Skipped(_clean(c["observed"][:500]))]
        cases.append(tc)
    model = _model_case(run, base, failure_chars)
    if model is not None:
        cases.append(model)
    suite.add_testcases(cases)
    suite.time = round(run.seconds, 3)
    out = attachment(run)
    if run.verdict in (FAIL, ERROR) and run.console:
        out += "\n" + _console_tail(run, console_chars)
    suite.append(SystemOut(_clean(out)))
    suite.update_statistics()
    return suite


def render(runs: list[Run]) -> str:
    failed = sum(r.verdict in (FAIL, ERROR) for r in runs)
    per_run = min(CONSOLE_MAX, CONSOLE_BUDGET // max(1, failed))
    texts = sum(len([c for c in r.by_origin(EXPECTATION) if c["verdict"] in (FAIL, ERROR)])
                + any(c["verdict"] in (FAIL, ERROR) for c in r.by_origin(MODEL)) for r in runs)
    per_failure = max(FAILURE_MIN, min(FAILURE_MAX, FAILURE_BUDGET // max(1, texts)))
    xml = JUnitXml("rvharness")
    for run in runs:
        xml.add_testsuite(_suite(run, per_run, per_failure))
    xml.update_statistics()
    # The xunit plugin's schema allows no 'skipped' count on <testsuites>
    # (only on each <testsuite>), where junitparser puts one.
    xml._elem.attrib.pop("skipped", None)
    text = xml.tostring()
    return '<?xml version="1.0" encoding="utf-8"?>\n' + (text.decode() if isinstance(text, bytes) else text) + "\n"
