"""JUnit for a review: one testcase per check, in a testsuite of its own
whose properties hold the check's counts on A (the base) and B (the
series) and its class. Only a new failure is a <failure>, so that a CI gate
on the series fails only on what the series broke; a check that already
fails on the base is <skipped> with that said. New kernel report titles are
testcases too (a failure each). Validates against the xunit plugin's schema
(tests/data/junit-10.xsd), which allows properties on a testsuite only."""
from __future__ import annotations

from junitparser import Failure, JUnitXml, Skipped, TestCase, TestSuite

from harness.outputs.junit import _clean, _ident
from harness.review.ab import FLAKY, NEW, STILL
from harness.review.record import Review


def _suite(name: str, case: TestCase, props: dict[str, str]) -> TestSuite:
    suite = TestSuite(_clean(name))
    for k, v in props.items():
        suite.add_property(k, _clean(str(v)))
    suite.add_testcase(case)
    suite.update_statistics()
    return suite


def render(rv: Review) -> str:
    xml = JUnitXml("rvharness review")
    for c in rv.cmp.checks:
        case = TestCase(_clean(c.name), f"review.{_ident(c.scenario)}.{'model' if c.model else 'expectations'}")
        if c.cls == NEW:
            res = Failure(_clean(f"new failure with {rv.patch_label(c.patch)}: {c.counts_text()}"[:500]))
            res.text = _clean(f"{c.significance}\nattribution: {c.attribution}\nreview: {rv.out / 'review.md'}")
            case.result = [res]
        elif c.cls in (STILL, FLAKY):
            case.result = [Skipped(_clean(f"{'already fails' if c.cls == STILL else 'flaky'} on the base: "
                                          f"{c.counts_text()}"))]
        props = {"class": c.cls, "A passed": c.a[0], "A failed": c.a[1], "B passed": c.b[0], "B failed": c.b[1]}
        if c.p is not None:
            props["p (Fisher, one-sided)"] = f"{c.p:.4g}"
        if c.patch is not None:
            props["patch"] = rv.patch_label(c.patch)
        xml.add_testsuite(_suite(f"review/{c.name}", case, props))
    for t in rv.cmp.titles:
        case = TestCase(_clean(f"report: {t.title}"), "review.reports")
        if t.cls == "new report":
            res = Failure(_clean(f"new kernel report with {rv.patch_label(t.patch)}"[:500]))
            res.text = _clean(f"in {t.b} runs with the series, never on the base; scenarios: "
                              f"{', '.join(t.scenarios)}")
            case.result = [res]
        xml.add_testsuite(_suite(f"review/report: {t.title}", case,
                                 {"class": t.cls, "A runs": t.a, "B runs": t.b}))
    if rv.build_break is not None:
        k, why = rv.build_break
        case = TestCase("build", "review.build")
        res = Failure(_clean(f"the build breaks at {rv.patch_label(k)}"[:500]))
        res.text = _clean(why)
        case.result = [res]
        xml.add_testsuite(_suite("review/build", case, {"patch": rv.patch_label(k)}))
    xml.update_statistics()
    xml._elem.attrib.pop("skipped", None)    # not allowed on <testsuites> by the schema (see junit.py)
    text = xml.tostring()
    return '<?xml version="1.0" encoding="utf-8"?>\n' + (text.decode() if isinstance(text, bytes) else text) + "\n"
