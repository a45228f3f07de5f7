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
the suite's <properties> hold the verdict and the counts.

This module is the one writer of JUnit XML: the review's (review_junit.py)
and the bisect's (bisect_report.py) are built with its public functions
(clean, ident, failure, error, skipped, testcase, testsuite, document)."""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite
from junitparser.junitparser import Result as _JResult
from junitparser.junitparser import SystemOut

from harness.expect.checks import ERROR, FAIL, FLAKY, SKIP
from harness.outputs.lines import count_line, origin_counts, repeats_counts
from harness.outputs.results import EXPECTATION, MODEL, SavedRun

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


# ------------------------------------------------------------ the writer

# XML 1.0 cannot carry most control characters (a console may hold any).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
Result = Failure | Error | Skipped


def clean(text: str) -> str:
    """text with what XML 1.0 cannot carry replaced by '?'."""
    return _NOT_XML.sub("?", text)


def ident(name: str) -> str:
    # Jenkins splits a classname at its dots into package and class.
    return re.sub(r"[^A-Za-z0-9_+-]", "_", name)


def failure(message: str, text: str | None = None) -> Failure:
    """A <failure>: the check ran and did not hold. An empty message is left out."""
    res = Failure(message)
    if text is not None:
        res.text = text
    return res


def error(message: str, text: str | None = None) -> Error:
    """An <error>: the check could not be judged."""
    res = Error(message)
    if text is not None:
        res.text = text
    return res


class RerunFailure(_JResult):
    """<rerunFailure>: an attempt that failed before a retry passed (the
    xunit schema's element; Jenkins and Maven Surefire read a testcase that
    holds one and no <failure> as flaky)."""
    _tag = "rerunFailure"


def rerun_failure(message: str, text: str | None = None) -> RerunFailure:
    res = RerunFailure(message)
    if text is not None:
        res.text = text
    return res


# A testcase's one result: a flaky check of `run --repeats` holds a <rerunFailure>.
Outcome = Result | RerunFailure


def skipped(message: str) -> Skipped:
    return Skipped(message)


def testcase(name: str, classname: str, time: float | None = None, result: Outcome | None = None,
             system_out: str | None = None) -> TestCase:
    """A <testcase>, passed unless result says otherwise; its <system-out>
    (if any) comes before the result. Without time it has no time attribute."""
    tc = TestCase(name, classname, time)
    if system_out is not None:
        tc.append(SystemOut(system_out))
    if isinstance(result, RerunFailure):
        tc.append(result)         # not a final result: the testcase still passed
    elif result is not None:
        tc.result = [result]
    return tc


def testsuite(name: str, cases: Iterable[TestCase], properties: Mapping[str, str] | None = None,
              file: str = "", system_out: str | None = None, time: float | None = None) -> TestSuite:
    """A <testsuite> of cases, its <properties> first (the xunit schema has
    properties on a suite only) and its <system-out> last; counts are those
    of its cases, and so is the time unless given."""
    suite = TestSuite(name)
    if file:
        suite._elem.set("file", file)
    for k, v in (properties or {}).items():
        suite.add_property(k, v)
    suite.add_testcases(list(cases))
    if system_out is not None:
        suite.append(SystemOut(system_out))
    suite.update_statistics()
    if time is not None:
        suite.time = round(time, 3)     # measured whole, where its cases have none
    return suite


def document(name: str, suites: Iterable[TestSuite], skipped_total: bool = False) -> str:
    """The <testsuites> document of suites, as text with its XML declaration.
    The xunit plugin's schema allows no 'skipped' count on <testsuites>
    (only on each <testsuite>), where junitparser puts one: it is dropped
    unless skipped_total."""
    xml = JUnitXml(name)
    suites = list(suites)
    for suite in suites:
        xml.add_testsuite(suite)
    # Summed here: JUnitXml.update_statistics would first recount each
    # suite from its cases, losing a suite's own time (testsuite(time=)).
    xml.tests, xml.failures, xml.errors, xml.skipped = (
        sum(getattr(s, k) or 0 for s in suites) for k in ("tests", "failures", "errors", "skipped"))
    xml.time = round(sum(s.time or 0.0 for s in suites), 3)
    if not skipped_total:
        xml._elem.attrib.pop("skipped", None)
    text = xml.tostring()
    return '<?xml version="1.0" encoding="utf-8"?>\n' + (text.decode() if isinstance(text, bytes) else text) + "\n"


# ------------------------------------------------------- a run or a matrix


def attachment(run: SavedRun) -> str:
    log = run.console_log
    return f"[[ATTACHMENT|{log.resolve()}]]" if log is not None else "(no console log was kept)"


def _console_tail(run: SavedRun, chars: int) -> str:
    text = run.console
    if len(text) <= chars:
        return text
    cut = text[-chars:]
    cut = cut[cut.find("\n") + 1:]
    return f"[... {len(text) - len(cut)} earlier characters in the attached console.log ...]\n{cut}"


def _failure_text(run: SavedRun, check: dict, limit: int) -> str:
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


def _model_case(run: SavedRun, base: str, limit: int) -> TestCase | None:
    """The model's claims as one testcase: a run holds 50 or more of them,
    and one testcase each made a matrix's JUnit 500 KB. Failing claims are
    listed in its failure, the first with its console lines; every claim,
    passing or not, is in the run's verdicts.json and report.html."""
    claims = run.by_origin(MODEL)
    if not claims:
        return None
    bad = [c for c in claims if c["verdict"] in (FAIL, ERROR)]
    flaky = [c for c in claims if c["verdict"] == FLAKY]
    if not bad and flaky:
        # run --repeats: claims that failed in some runs only
        return testcase(MODEL_CASE, f"{base}.model", None, rerun_failure(
            clean(f"{len(flaky)} of {len(claims)} model claims failed in some runs: "
                  + "; ".join(c.get("message") or c["name"] for c in flaky[:3]))[:500]))
    if not bad:
        return testcase(MODEL_CASE, f"{base}.model")
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
    res = (failure if any(c["verdict"] == FAIL for c in bad) else error)(
        clean(f"{len(bad)} of {len(claims)} model claims disagree with the kernel: "
              + "; ".join(c["name"] for c in bad[:3]))[:500],
        clean("\n\n".join(parts)))
    return testcase(MODEL_CASE, f"{base}.model", None, res)


def _scenario_case(run: SavedRun, base: str) -> TestCase:
    """The one testcase of a run without checks: skipped, or an error before
    any check could run."""
    res: Result | None = None
    if run.verdict == SKIP:
        res = skipped(clean(run.reason or "skipped"))
    elif run.verdict in (ERROR, FAIL):
        res = (error if run.verdict == ERROR else failure)(clean((run.reason or run.verdict).splitlines()[0]),
                                                           clean(f"{run.reason}\n{attachment(run)}"))
    return testcase("scenario", f"{base}.expectations", None, res)


def _expectation_case(run: SavedRun, c: dict, base: str, failure_chars: int) -> TestCase:
    res: Outcome | None = None
    # run --repeats: the check's counts over the runs lead its message
    counts = f"{c['message']}: " if run.repeats and c.get("message") else ""
    if c["verdict"] in (FAIL, ERROR):
        first = c["observed"].splitlines()[0] if c["observed"] else ""
        res = (failure if c["verdict"] == FAIL else error)(
            clean(f"{counts}expected {c['expected']}; observed {first}"[:500]),
            clean(_failure_text(run, c, failure_chars)))
    elif c["verdict"] == FLAKY:
        # Failed in some of the repeats only: flaky, as a pass on a retry is.
        res = rerun_failure(clean(c.get("message") or "failed in some runs")[:500],
                            clean(f"expected: {c['expected']}\nobserved (failing run): {c['observed']}"[:failure_chars]))
    elif c["verdict"] == SKIP:
        res = skipped(clean(c["observed"][:500]))
    return testcase(clean(c["name"]), f"{base}.expectations", None, res)


def _repeats_case(run: SavedRun, base: str) -> TestCase:
    """A FLAKY scenario of `run --repeats` marked as a pass on a retry is:
    one testcase holding a <rerunFailure>, the counts in its message and
    every attempt's console logs in its text."""
    doc = run.repeats or {}
    failed = [count_line(c) for c in doc.get("checks", []) if c["failed"]]
    logs = [f"run {a['run']} ({a['sample']}): {', '.join(a['console_logs']) or '-'}" for a in doc.get("attempts", [])]
    case = testcase("passed and failed over the runs", f"{base}.attempts")
    case.append(rerun_failure(clean(f"{repeats_counts(doc)}: " + "; ".join(failed))[:500],
                              clean("console logs, relative to " + str(run.artifacts) + ":\n" + "\n".join(logs))))
    return case


def _suite(run: SavedRun, console_chars: int, failure_chars: int) -> TestSuite:
    props = {"verdict": run.verdict, "checks": origin_counts(run.checks)}
    if run.repeats:
        props["repeats"] = repeats_counts(run.repeats)
    if run.boot_retries:
        props["boot"] = f"boot retried {run.boot_retries}x: {run.reason}"
    base = f"{ident(run.kernel)}.{ident(run.scenario)}"
    # No per-check time: the checks are judged together from one run, so
    # the run's time is the suite's and a testcase has none (dividing it
    # evenly made times nobody measured).
    if run.verdict == SKIP or not run.checks:
        # Skipped as a whole: one <skipped> with the reason, whatever checks
        # the model judged before the skip (a testcase that "passed" made
        # skipped="0" on a scenario the terminal called SKIP).
        cases = [_scenario_case(run, base)]
    else:
        cases = [_expectation_case(run, c, base, failure_chars) for c in run.by_origin(EXPECTATION)]
        model = _model_case(run, base, failure_chars)
        if model is not None:
            cases.append(model)
    if run.verdict == FLAKY and run.repeats:
        cases.append(_repeats_case(run, base))
    elif run.verdict == FLAKY:
        kept = sorted(p.name for p in run.artifacts.glob("console-*.log")) if run.artifacts else []
        retried = testcase("passed on a retry", f"{base}.attempts")
        retried.append(rerun_failure(clean(run.reason.splitlines()[0][:500] if run.reason else "retried"),
                                     clean("earlier attempts' console logs: " + (", ".join(kept) or "-"))))
        cases.append(retried)
    out = attachment(run)
    if run.verdict in (FAIL, ERROR) and run.console:
        out += "\n" + _console_tail(run, console_chars)
    return testsuite(f"{run.kernel}/{run.scenario}", cases, props, file=run.file, system_out=clean(out),
                     time=run.seconds)


def render(runs: list[SavedRun]) -> str:
    failed = sum(r.verdict in (FAIL, ERROR) for r in runs)
    per_run = min(CONSOLE_MAX, CONSOLE_BUDGET // max(1, failed))
    texts = sum(len([c for c in r.by_origin(EXPECTATION) if c["verdict"] in (FAIL, ERROR)])
                + any(c["verdict"] in (FAIL, ERROR) for c in r.by_origin(MODEL)) for r in runs)
    per_failure = max(FAILURE_MIN, min(FAILURE_MAX, FAILURE_BUDGET // max(1, texts)))
    return document("rvharness", [_suite(run, per_run, per_failure) for run in runs])
