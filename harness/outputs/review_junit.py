"""JUnit for a review: one testcase per check, in a testsuite of its own
whose properties hold the check's counts on A (the base) and B (the
series) and its class. Only a new failure is a <failure>, so that a CI gate
on the series fails only on what the series broke; a check that already
fails on the base is <skipped> with that said. New kernel report titles are
testcases too (a failure each). An UNKNOWN check is <skipped>, with what it
would have caught: the review exits 3 for it. Validates against the xunit plugin's schema
(tests/data/junit-10.xsd), which allows properties on a testsuite only."""
from __future__ import annotations

from junitparser import TestCase, TestSuite

from harness.decide.ab_counts import FLAKY, NEW, STILL, UNDECIDED
from harness.outputs.junit import Result, clean, document, failure, ident, skipped, testcase, testsuite
from harness.review.record import Review


def _suite(name: str, case: TestCase, props: dict[str, object]) -> TestSuite:
    return testsuite(clean(name), [case], {k: clean(str(v)) for k, v in props.items()})


def _check_suites(rv: Review) -> list[TestSuite]:
    """One suite per check, its testcase a failure only if the series brought it."""
    suites = []
    for c in rv.cmp.checks:
        res: Result | None = None
        if c.cls == NEW:
            res = failure(clean(f"new failure with {rv.patch_label(c.patch)}: {c.counts_text()}"[:500]),
                          clean(f"{c.significance}\nattribution: {c.attribution}\nreview: {rv.out / 'review.md'}"))
        elif c.cls in (STILL, FLAKY):
            res = skipped(clean(f"{'already fails' if c.cls == STILL else 'fails on both sides alike'}: "
                                f"{c.significance}"[:500]))
        elif c.cls == UNDECIDED:
            res = skipped(clean(f"undecided within the budget: {c.significance}"[:500]))
        case = testcase(clean(c.name), f"review.{ident(c.scenario)}.{'model' if c.model else 'expectations'}",
                        result=res)
        props = {"class": c.cls, "A passed": c.a[0], "A failed": c.a[1], "B passed": c.b[0], "B failed": c.b[1]}
        if c.p is not None:
            props["p (Fisher, one-sided)"] = f"{c.p:.4g}"
        if c.verdict is not None:
            props["decision"] = c.verdict.outcome
            props["level (a look)"] = f"{c.verdict.level:.4g}"
        if c.patch is not None:
            props["patch"] = rv.patch_label(c.patch)
        suites.append(_suite(f"review/{c.name}", case, props))
    return suites


def render(rv: Review) -> str:
    suites = _check_suites(rv)
    for t in rv.cmp.titles:
        res: Result | None = None
        text = t.verdict.text() if t.verdict else ""
        if t.cls == "new report":
            res = failure(clean(f"new kernel report with {rv.patch_label(t.patch)}"[:500]),
                          clean(f"{text}; scenarios: {', '.join(t.scenarios)}"))
        elif t.cls == "report undecided":
            res = skipped(clean(f"undecided within the budget: {text}"[:500]))
        case = testcase(clean(f"report: {t.title}"), "review.reports", result=res)
        suites.append(_suite(f"review/report: {t.title}", case, {"class": t.cls, "A runs": t.a, "B runs": t.b}))
    if rv.build_break is not None:
        k, why = rv.build_break
        case = testcase("build", "review.build",
                        result=failure(clean(f"the build breaks at {rv.patch_label(k)}"[:500]), clean(why)))
        suites.append(_suite("review/build", case, {"patch": rv.patch_label(k)}))
    # No 'skipped' count on <testsuites>: the schema does not allow it (see junit.document).
    return document("rvharness review", suites)
