"""rvharness review without a VM: classification, Fisher significance text,
the attribution search over prefixes with an injected predicate and an
injected build and run, the series through b4 (a small real git repository
and git format-patch), the apply check, the mail headers, patchwork JSON,
JUnit validity and review.md's order."""
from __future__ import annotations

import email
import email.policy
import json
import math
import os
import subprocess
import time
from pathlib import Path

import pytest
import xmlschema
from junitparser import Failure, JUnitXml, Skipped

from harness.core.arch import RISCV64
from harness.core.errors import InputError
from harness.decide import ab_counts
from harness.decide.compare import Design
from harness.expect.checks import FAIL, PASS
from harness.kernel.kbuild import BuiltKernel
from harness.outputs import patchwork, review_junit, review_mail, review_md
from harness.review import ab, attribute, kernels, series
from harness.review.record import Review, ReviewParams, Stats
from harness.run.repeats import Counts, SuiteRun

ROOT = Path(__file__).resolve().parents[2]
XSD = ROOT / "tests/data/junit-10.xsd"


# ------------------------------------------------------------------ decisions

def _counts_of(side: tuple[int, int], name: str = "s: c", infra: int = 0) -> Counts:
    """(passed, failed) runs of one check, and runs voided by infrastructure."""
    c = Counts()
    for i in range(side[0] + side[1]):
        c.add(SuiteRun(i, {name: FAIL if i < side[1] else PASS}, ran=["s"]))
    for i in range(infra):
        c.add(SuiteRun(100 + i, {}, infra="s: QEMU died", unjudged={"s": "infrastructure: QEMU died"}, ran=["s"]))
    return c


@pytest.mark.parametrize("a,b,cls", [
    ((5, 0), (5, 0), ab_counts.UNCHANGED),
    ((5, 0), (0, 5), ab_counts.NEW),           # p = 1/252 against 0.05/3 a look
    ((0, 5), (5, 0), ab_counts.FIXED),
    ((0, 5), (0, 5), ab_counts.STILL),
    ((9, 1), (0, 10), ab_counts.NEW),          # a flaky base is not a verdict: 10% -> 100% is worse
    ((2, 1), (0, 3), ab_counts.UNDECIDED),     # before: "flaky", exit 0
    ((3, 0), (2, 1), ab_counts.UNDECIDED),     # before: "new failure", p = 0.5, exit 1
    ((3, 0), (0, 3), ab_counts.UNDECIDED),     # p = 0.05 is not below 0.05/3: more runs
    ((4, 1), (4, 1), ab_counts.FLAKY),
    ((8, 1), (9, 0), ab_counts.LEANS_BETTER),  # one bring-up miss on the base: no rise, exit 0
])
def test_decision_from_counts(a, b, cls) -> None:
    (row,) = ab.compare(_counts_of(a), _counts_of(b)).checks
    assert row.cls == cls, row.significance


def test_a_lean_better_continues_but_exits_0() -> None:
    """A 1/9, B 0/9 (a bring-up miss on the base): a rise is ruled out, so
    the exit code is "SAME or better", while a real fix not yet significant
    (A 5/5, B 0/5 beside others) keeps its scenario running to DIFFERENT."""
    from harness.decide import compare as core
    cmp = ab.compare(_counts_of((8, 1)), _counts_of((9, 0)))
    assert not cmp.undecided and core.exit_code(cmp.verdicts) == 0
    assert "leans better, no rise" in cmp.checks[0].significance
    assert core.next_round(cmp.verdicts, {"s": 5}, lambda _n: ("s",)) == ["s"]


def test_a_barely_tested_side_is_undecided_never_unchanged() -> None:
    """B: 9 runs voided by infrastructure and 1 judged; before, "unchanged" and exit 0."""
    cmp = ab.compare(_counts_of((10, 0)), _counts_of((1, 0), infra=9))
    (row,) = cmp.checks
    assert (row.cls, row.verdict.outcome) == (ab_counts.UNDECIDED, "UNKNOWN") and cmp.undecided
    assert "no rise from 0% would have been seen" in row.significance


def test_decision_texts_state_p_level_and_what_would_have_been_seen() -> None:
    cmp = ab.compare(_counts_of((5, 0)), _counts_of((0, 5)))
    assert cmp.checks[0].significance == ("A 0/5 failed, B 5/5 failed: DIFFERENT (worse), p = 0.004 "
                                          "(Fisher one-sided, Holm at 0.0167 a look)")
    same = ab.compare(_counts_of((9, 0)), _counts_of((9, 0))).checks[0]
    assert same.cls == ab_counts.UNCHANGED
    assert "with 9 and 9 runs a rise from 0% to " in same.significance and "80% probability" in same.significance


def _fake_round(fail: dict[tuple[str, str], float], calls: list):
    """run_round over scenarios named s0, s1, ...: check 'c' of scenario s
    fails on side L in a fraction fail[(s, L)] of runs (deterministically
    spread), else passes."""
    def run_round(scns, kernel, initrd, out, indices, label):
        calls.append((label, [s.name for s in scns], list(indices)))
        runs = []
        for i in indices:
            checks = {}
            for s in scns:
                rate = fail.get((s.name, label), 0.0)
                checks[f"{s.name}: c"] = FAIL if (i * rate) % 1 + rate >= 1 - 1e-9 and rate else PASS
            runs.append(SuiteRun(i, checks, ran=[s.name for s in scns]))
        return runs
    return run_round


def test_rounds_repeat_only_the_leaning_scenario_until_decided() -> None:
    """Three scenarios, the series breaks s1 in every run: round 1 runs all
    three once a side, round 2 only s1 (4 more a side): DIFFERENT, exit 1,
    14 boots (before: 3 runs of everything a side, 18 boots, and p = 0.05)."""
    calls: list = []
    scns = [_scn("s0"), _scn("s1"), _scn("s2")]
    _, _, cmp = ab.rounds(scns, None, None, Path("/dev/null"), Path("/x"), Design(),
                          _fake_round({("s1", "B"): 1.0}, calls))
    assert calls == [("A", ["s0", "s1", "s2"], [1]), ("B", ["s0", "s1", "s2"], [1]),
                     ("A", ["s1"], [2, 3, 4, 5]), ("B", ["s1"], [2, 3, 4, 5])]
    assert [c.name for c in cmp.of(ab_counts.NEW)] == ["s1: c"] and cmp.regressed
    assert cmp.runs_per_scenario == {"s0": 1, "s1": 5, "s2": 1} and cmp.rounds == 2
    assert sum(len(c[1]) * len(c[2]) for c in calls) == 14


def test_rounds_focus_on_two_leaning_scenarios_at_a_time() -> None:
    """A series that breaks every scenario (a removed IPI row fails the
    model's row claim everywhere): round 2 runs two of them, not all five,
    and their DIFFERENT ends the review (10 + 16 boots, not 10 + 40)."""
    calls: list = []
    scns = [_scn(f"s{i}") for i in range(5)]
    _, _, cmp = ab.rounds(scns, None, None, Path("/dev/null"), Path("/x"), Design(),
                          _fake_round({(s.name, "B"): 1.0 for s in scns}, calls))
    assert [c[1] for c in calls] == [[s.name for s in scns]] * 2 + [["s0", "s1"]] * 2
    assert cmp.regressed and {c.scenario for c in cmp.of(ab_counts.NEW)} == {"s0", "s1"}
    assert {c.scenario for c in cmp.of(ab_counts.UNDECIDED)} == {"s2", "s3", "s4"}


def test_rounds_do_not_repeat_a_scenario_the_base_always_skips() -> None:
    """qmp-nmi skips on the riscv64 base (QEMU refuses inject-nmi) but fails
    with a series that changes a row its model claims name: more runs
    cannot judge it, so the rounds go to s1, the scenario that can."""
    calls: list = []
    inner = _fake_round({("nmi", "B"): 1.0, ("s1", "B"): 1.0}, calls)

    def run_round(scns, kernel, initrd, out, indices, label):
        runs = inner(scns, kernel, initrd, out, indices, label)
        for r in runs:
            if label == "A" and "nmi" in r.ran:
                del r.checks["nmi: c"]
                r.unjudged["nmi"] = "skipped: QEMU refused inject-nmi"
            elif "nmi" in r.ran:          # a report in nmi's console: a title that leans toward nmi
                r.titles.append("BUG: x")
                r.titles_by_scenario["nmi"] = ["BUG: x"]
        return runs
    # focus 1: without the rule, "nmi" (as lopsided as s1, first by name) would be the one run again
    _, _, cmp = ab.rounds([_scn("nmi"), _scn("s1")], None, None, Path("/dev/null"), Path("/x"), Design(focus=1),
                          run_round)
    assert [c[1] for c in calls[2:]] == [["s1"]] * 2 and cmp.regressed
    assert cmp.runs_per_scenario == {"nmi": 1, "s1": 5}


def test_rounds_with_nothing_changed_end_same_within_the_budget() -> None:
    calls: list = []
    _, _, cmp = ab.rounds([_scn("s0"), _scn("s1")], None, None, Path("/dev/null"), Path("/x"), Design(),
                          _fake_round({}, calls))
    assert {c.cls for c in cmp.checks} == {ab_counts.UNCHANGED} and not cmp.undecided
    assert cmp.runs_per_scenario == {"s0": 5, "s1": 5}


def test_rounds_stop_undecided_at_the_budget() -> None:
    """A check at 30% on both sides that keeps leaning: every round is spent,
    at most max_runs a side, and the answer is UNKNOWN (exit 3), not SAME."""
    calls: list = []
    _, _, cmp = ab.rounds([_scn("s0")], None, None, Path("/dev/null"), Path("/x"), Design(max_runs=5),
                          _fake_round({("s0", "B"): 0.4}, calls))
    assert cmp.runs_per_scenario == {"s0": 5}
    assert [c.cls for c in cmp.checks] in ([ab_counts.UNDECIDED], [ab_counts.FLAKY])


def _run(i: int, checks: dict[str, str], titles=(), infra: str = "") -> SuiteRun:
    return SuiteRun(i, dict(checks), list(titles), infra)


def test_compare_counts_titles_and_base_failures() -> None:
    a, b = Counts(), Counts()
    for i in range(1, 10):       # 9 a side: three changes share Holm's alpha
        a.add(_run(i, {"s: ok": PASS, "s: broken": PASS, "s: old": FAIL, "s: flaky": FAIL if i == 2 else PASS}))
        b.add(_run(i, {"s: ok": PASS, "s: broken": FAIL, "s: old": FAIL, "s: flaky": FAIL if i == 3 else PASS},
                   titles=["WARNING: at foo"]))
    b.add(_run(10, {}, infra="s: QEMU exited"))
    # Made only on a crash: failing in every run of A, absent from B.
    for r in a.runs:
        r.checks["s: kernel did not crash"] = FAIL
    cmp = ab.compare(a, b)
    cls = {c.name: c.cls for c in cmp.checks}
    assert cls == {"s: ok": ab_counts.UNCHANGED, "s: broken": ab_counts.NEW, "s: old": ab_counts.STILL,
                   "s: flaky": ab_counts.FLAKY, "s: kernel did not crash": ab_counts.FIXED}
    fixed = next(c for c in cmp.checks if c.cls == ab_counts.FIXED)
    assert (fixed.a, fixed.b) == ((0, 9), (9, 0))
    assert [(t.title, t.cls, t.b, t.scenarios) for t in cmp.titles] == [
        ("WARNING: at foo", ab.NEW_TITLE, 9, ("s",))]
    assert cmp.regressed and cmp.b_judged == 9 and cmp.b_infra == ["s: QEMU exited"]


def test_a_scenario_that_always_skips_voids_only_its_own_checks() -> None:
    """qmp-nmi skips on riscv64 in every run: the other scenarios' checks
    are still counted on both sides (before, every run was unjudged and the
    review exited 2 after all its boots)."""
    a, b = Counts(), Counts()
    for i in (1, 2, 3):
        for counts, verdict in ((a, PASS), (b, FAIL)):
            run = _run(i, {"s: check": verdict})
            run.skipped = "qmp-nmi: QEMU refused inject-nmi"
            run.unjudged["qmp-nmi"] = "skipped: QEMU refused inject-nmi"
            counts.add(run)
    b.runs[2].unjudged["s"] = "infrastructure: QEMU exited"     # one run of s voided on B
    b.runs[2].infra = "s: QEMU exited"
    cmp = ab.compare(a, b)
    assert cmp.a_judged == 3 and cmp.b_judged == 2
    row = next(c for c in cmp.checks if c.name == "s: check")
    # 3 judged runs against 2 decide nothing yet (p = 0.1): the next round runs s again
    assert (row.a, row.b) == ((3, 0), (0, 2)) and row.cls == ab_counts.UNDECIDED
    assert not any(c.scenario == "qmp-nmi" for c in cmp.checks)


# ------------------------------------------------------------------ attribution

def test_every_judged_run_states_the_implicit_checks_it_passed() -> None:
    """The runner states "kernel did not crash" and its kind only when they
    fail; review and bisect count them in every judged run (issue 24), so
    both kernels of an A/B have counts for them. A check the run never got
    far enough to see is not given a pass."""
    from harness.expect.checks import ERROR, FLAKY
    from harness.expect.result import ScenarioResult
    from harness.expect.verdicts import CheckResult
    from harness.run.repeats import IMPLICIT, implicit_passes

    def res(verdict: str, *checks: CheckResult, model_only: bool = False) -> ScenarioResult:
        return ScenarioResult(None, "k", verdict, list(checks), model_only=model_only)  # type: ignore[arg-type]

    ok = CheckResult("a check", PASS, "x", "x")
    assert implicit_passes(res(PASS, ok)) == list(IMPLICIT)
    assert implicit_passes(res(FLAKY, ok)) == list(IMPLICIT)
    # Crashed while booting: no shell, no bring-up, no step answered.
    boot_crash = CheckResult("kernel did not crash", FAIL, "no panic", "Kernel panic", None)
    assert implicit_passes(res(FAIL, boot_crash)) == ["no unexpected kernel report"]
    # Hung in a step: it booted, brought its CPUs up and did not crash.
    hang = CheckResult("guest responded", FAIL, "every step completes", "timed out", "trigger")
    assert implicit_passes(res(FAIL, ok, hang)) == ["kernel boots to a shell", "all CPUs came online at boot",
                                                    "kernel did not crash", "no unexpected kernel report"]
    no_shell = CheckResult("kernel boots to a shell", FAIL, "ready line", "timed out", None)
    assert implicit_passes(res(FAIL, no_shell)) == ["kernel did not crash", "no unexpected kernel report"]
    # --model-only does not look for unexpected reports; an ERROR did not get there.
    assert "no unexpected kernel report" not in implicit_passes(res(PASS, ok, model_only=True))
    assert "no unexpected kernel report" not in implicit_passes(res(ERROR, ok))


def test_a_crash_is_placed_on_prefixes_that_pass() -> None:
    """A prefix that passes states "kernel did not crash": PASS (above), so a
    crash brought by patch 2 of 3 is placed (before: every such prefix was
    unjudgeable and the crash's attribution "ambiguous")."""
    delta = ab.CheckDelta("s: kernel did not crash", (3, 0), (0, 3), ab_counts.NEW)
    change = attribute.change_of_check(delta)
    assert (change.a, change.b) == ((0, 3), (3, 3))
    crashed = SuiteRun(1, {"s: kernel did not crash": FAIL, "s: check": "error"})
    clean = SuiteRun(2, {"s: check": PASS, "s: kernel did not crash": PASS})
    skipped = SuiteRun(3, {}, skipped="s: not on this arch", unjudged={"s": "skipped: not on this arch"})
    assert change.b_like(crashed) is True
    assert change.b_like(clean) is False
    assert change.b_like(skipped) is None
    # A check missing from a run (a step log written before it was stated) says nothing.
    assert change.b_like(SuiteRun(4, {"s: check": PASS})) is None


def test_place_finds_the_patch_with_its_probability() -> None:
    """The posterior over the patches, fed by injected runs: a deterministic
    change is placed at P >= 0.95 with about log2(n) prefixes and a few runs
    each; the endpoints (base, series) are never run."""
    for n in range(2, 13):
        for t in range(1, n + 1):
            counts = {k: (0, 0) for k in range(1, n)}

            def more(k: int) -> bool:
                f, r = counts[k]
                counts[k] = (f + (k >= t), r + 1)
                return True
            k, p, asked = attribute.place(n, (0, 5), (5, 5), counts.get, more, budget=3 * (n - 1))
            assert k == t and p >= 0.95, (n, t, k, p, counts)
            assert 0 not in asked and n not in asked
            assert len(asked) <= math.ceil(math.log2(n)) + 1, (n, t, asked)
            assert sum(r for _, r in counts.values()) <= 3 * math.ceil(math.log2(n)) + 1, (n, t, counts)


def test_place_says_undecided_instead_of_guessing() -> None:
    # Prefixes 3 and 4 do not build and the change is at 4: 2 is like the base,
    # 5 like the series, and nothing tells 3 from 4 from 5.
    counts = {k: (0, 0) for k in range(1, 8)}

    def more(k: int) -> bool:
        if k in (3, 4):
            return False
        f, r = counts[k]
        counts[k] = (f + (k >= 4), r + 1)
        return True
    k, p, _ = attribute.place(8, (0, 5), (5, 5), counts.get, more, budget=30)
    assert k is None and p < 0.95
    # A flaky change (1 run in 2 on the series) needs more runs, within the budget.
    rng = __import__("random").Random(1)
    counts = {k: (0, 0) for k in range(1, 4)}

    def flaky(k: int) -> bool:
        f, r = counts[k]
        counts[k] = (f + (k >= 2 and rng.random() < 0.5), r + 1)
        return True
    k, p, _ = attribute.place(4, (0, 9), (5, 9), counts.get, flaky, budget=40)
    assert k == 2 and p >= 0.95, (k, p, counts)


class FakeBuilder:
    """Prefix k builds a 'kernel' whose name carries k; 3 does not build."""

    def __init__(self, broken: tuple[int, ...] = ()) -> None:
        self.recipe = None
        self.broken = broken
        self.calls: list[int] = []

    def build(self, k: int) -> kernels.Built:
        self.calls.append(k)
        if k in self.broken:
            return kernels.Built(k, None, "error: boom")
        return kernels.Built(k, BuiltKernel(f"key{k}", Path(f"/nonexistent/{k}"), f"prefix{k}", RISCV64))

    def base_text(self) -> str:
        return "fake"


def _scn(name: str):
    from types import SimpleNamespace
    return SimpleNamespace(name=name)


def test_attribution_with_injected_build_and_runs() -> None:
    """Series of 8: check x breaks at patch 3 (always), y at patch 6 (one
    run in two), z is fixed by patch 8. Runs and builds are shared."""
    runs: list[tuple[int, str]] = []

    def run_once(scns, kernel, initrd, out, index, label=None, on_boot=None) -> SuiteRun:
        k = int(kernel.recipe_name.removeprefix("prefix"))
        (scn,) = scns
        runs.append((k, scn.name))
        checks = {"s1: x": FAIL if k >= 3 else PASS,
                  "s2: y": FAIL if k >= 6 and index % 2 == 0 else PASS,
                  "s3: z": PASS if k >= 8 else FAIL}
        return _run(index, {n: v for n, v in checks.items() if n.startswith(scn.name + ":")})

    cmp = ab.Comparison(checks=[ab.CheckDelta("s1: x", (3, 0), (0, 3), ab_counts.NEW),
                                ab.CheckDelta("s2: y", (9, 0), (4, 5), ab_counts.NEW),
                                ab.CheckDelta("s3: z", (0, 3), (3, 0), ab_counts.FIXED),
                                ab.CheckDelta("s1: w", (3, 0), (3, 0), ab_counts.UNCHANGED)])
    builder = FakeBuilder()
    judge = attribute.PrefixJudge(builder, [_scn("s1"), _scn("s2"), _scn("s3")], Path("/dev/null"),
                                  Path("/nonexistent"), run_once)
    asked = attribute.attribute(cmp, 8, judge, repeats=9)
    got = {c.name: c.patch for c in cmp.checks}
    assert got == {"s1: x": 3, "s2: y": 6, "s3: z": 8, "s1: w": None}
    assert sorted(set(builder.calls)) == sorted(asked) and len(asked) <= 7
    # Each prefix's runs of a scenario are numbered from 1 and never repeated.
    assert len(runs) == len(set((k, s, i) for i, (k, s) in enumerate(runs))) and all(k < 8 for k, _ in runs)
    assert cmp.checks[0].attribution.startswith("patch 3 with P = 0.9")


def test_attribution_single_patch_builds_nothing() -> None:
    cmp = ab.Comparison(checks=[ab.CheckDelta("s: x", (2, 0), (0, 2), ab_counts.NEW)])
    assert attribute.attribute(cmp, 1, None, 2) == []
    assert cmp.checks[0].patch == 1


def test_attribution_around_a_prefix_that_does_not_build() -> None:
    def run_once(scns, kernel, initrd, out, index, label=None, on_boot=None) -> SuiteRun:
        k = int(kernel.recipe_name.removeprefix("prefix"))
        return _run(index, {"s1: x": FAIL if k >= 4 else PASS})
    cmp = ab.Comparison(checks=[ab.CheckDelta("s1: x", (2, 0), (0, 2), ab_counts.NEW)])
    judge = attribute.PrefixJudge(FakeBuilder(broken=(3,)), [_scn("s1")], Path("/dev/null"), Path("/x"),
                                  run_once)
    attribute.attribute(cmp, 4, judge, repeats=2)
    # 3 does not build: 2 passes, 3 unknown, 4 is the series: undecided between 3 and 4.
    assert cmp.checks[0].patch is None and cmp.checks[0].attribution.startswith("undecided")


# ------------------------------------------------------------------ series (b4) on a small git repository

def _git(repo: Path, *args: str, date: str | None = None) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Dev", "GIT_AUTHOR_EMAIL": "dev@example.org",
           "GIT_COMMITTER_NAME": "Dev", "GIT_COMMITTER_EMAIL": "dev@example.org"}
    if date is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


@pytest.fixture()
def small_repo(tmp_path: Path) -> tuple[Path, str, list[str]]:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "a.c").write_text("".join(f"line {i}\n" for i in range(1, 30)))
    _git(repo, "add", "a.c")
    _git(repo, "commit", "-q", "-m", "base")
    base = _git(repo, "rev-parse", "HEAD")
    shas = []
    for i, (subject, old, new) in enumerate([("a: one", "line 5\n", "line five\n"),
                                             ("a: two", "line 15\n", "line fifteen\n"),
                                             ("a: three", "line 25\n", "line 25 and more\n")]):
        text = (repo / "a.c").read_text().replace(old, new)
        (repo / "a.c").write_text(text)
        # A minute apart, as a user's commits are: with equal dates b4 took
        # unnumbered patches for one series, with rising ones for versions,
        # and test_series_bad_input passed or failed with the clock.
        _git(repo, "commit", "-q", "-am", subject, date=f"2026-01-01T00:0{i + 1}:00Z")
        shas.append(_git(repo, "rev-parse", "HEAD"))
    return repo, base, shas


def _format(repo: Path, rng: str, dest: Path, *extra: str) -> list[Path]:
    _git(repo, "format-patch", "-q", "--cover-letter", "--thread", "-o", str(dest), *extra, rng)
    files = sorted(dest.glob("*.patch"))
    files[0].write_text(files[0].read_text().replace("*** SUBJECT HERE ***", "a: three changes"))
    return files


def test_series_from_directory_mbox_and_range(small_repo, tmp_path: Path) -> None:
    repo, base, _ = small_repo
    files = _format(repo, f"{base}..HEAD", tmp_path / "d", f"--base={base}")
    s = series.load(tmp_path / "d")
    assert [p.label for p in s.patches] == ["1/3 a: one", "2/3 a: two", "3/3 a: three"]
    assert s.subject == "a: three changes" and s.base_commit == base and s.cover_msgid
    assert s.patches[0].diff.startswith("diff --git a/a.c b/a.c") and "-- \n" not in s.patches[2].diff
    # The same as one mbox, in another order: b4 orders by n/m.
    mbox = tmp_path / "s.mbox"
    mbox.write_text("".join(f.read_text() for f in reversed(files)))
    assert [p.number for p in series.load(mbox).patches] == [1, 2, 3]
    ranged, rbase = series.from_range(repo, f"{base}..HEAD", tmp_path / "r")
    assert rbase == base and [p.subject for p in ranged.patches] == ["a: one", "a: two", "a: three"]
    assert [p.diff for p in ranged.patches] == [p.diff for p in s.patches]


def test_series_bad_input(small_repo, tmp_path: Path) -> None:
    repo, base, shas = small_repo
    files = _format(repo, f"{base}..HEAD", tmp_path / "d")
    files[2].unlink()
    with pytest.raises(InputError, match=r"patch 2/3 missing"):
        series.load(tmp_path / "d")
    plain = tmp_path / "plain"
    _git(repo, "format-patch", "-q", "--no-numbered", "-o", str(plain), f"{base}..HEAD")    # [PATCH] without n/m
    with pytest.raises(InputError, match=r"'\[PATCH\] a: .*': no \[PATCH n/m\] number, and the mbox holds several patches"):
        series.load(plain)
    empty = tmp_path / "empty.mbox"
    empty.write_text("From x Mon Sep 17 00:00:00 2001\nFrom: a@b\nSubject: hello\nMessage-Id: <1@x>\n\nhi\n")
    with pytest.raises(InputError, match="no patches found"):
        series.load(empty)
    with pytest.raises(InputError, match="expected a git range BASE..TIP"):
        series.from_range(repo, "HEAD", tmp_path / "r")


def test_series_versions_newest_taken_and_said(small_repo, tmp_path: Path) -> None:
    repo, base, shas = small_repo
    v1 = _format(repo, f"{base}..{shas[1]}", tmp_path / "v1")
    time.sleep(1.1)     # format-patch's message-ids carry the time in seconds
    v2 = _format(repo, f"{base}..HEAD", tmp_path / "v2", "-v2")
    mbox = tmp_path / "both.mbox"
    mbox.write_text("".join(f.read_text() for f in v1 + v2))
    s = series.load(mbox)
    assert s.version == 2 and len(s.patches) == 3 and s.versions == (1, 2)
    assert s.note == "the mbox holds 2 versions (v1, v2); v2 tested (the newest; --version N picks another)"
    old = series.load(mbox, version=1)
    assert old.version == 1 and len(old.patches) == 2 and "asked with --version" in old.note


def test_check_applies_names_patch_file_and_hunk(small_repo, tmp_path: Path) -> None:
    repo, base, shas = small_repo
    _format(repo, f"{base}..HEAD", tmp_path / "d")
    s = series.load(tmp_path / "d")
    files = series.write_patches(s, tmp_path / "p")
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.c").write_text(_git(repo, "show", f"{base}:a.c") + "\n")
    kernels.check_applies(s, (), files, kernels.base_file_from_source(src))     # applies
    (src / "a.c").write_text((src / "a.c").read_text().replace("line 15\n", "line XV\n"))
    with pytest.raises(InputError, match=r"patch 2/3 'a: two' does not apply: a.c, hunk #1 \(at line 12\)"):
        kernels.check_applies(s, (), files, kernels.base_file_from_source(src))


# ------------------------------------------------------------------ outputs

def _review(tmp_path: Path, checks: list[ab.CheckDelta], titles=(), cover: bool = True) -> Review:
    patches = tuple(series.Patch(i, 2, f"sub: change {i}", "Dev <dev@example.org>", f"p{i}@example.org",
                                 "diff --git a/x b/x\n", (series.Trailer("Acked-by", "M <m@x>", "M"),) if i == 1
                                 else ()) for i in (1, 2))
    ser = series.Series("s.mbox", "sub: two changes", 2, "Dev <dev@example.org>", patches,
                        "cover@example.org" if cover else "", ("cover@example.org", "p1@example.org"),
                        ("v1cover@example.org",) if cover else (), "abc123")
    cmp = ab.Comparison(checks=checks, titles=list(titles), a_runs=3, b_runs=3, a_judged=3, b_judged=3)
    return Review(ReviewParams("s.mbox", ("scenarios/x.yaml",), repeats=3, email=True), ser, tmp_path, "default",
                  "riscv64", "gcc 14", "aaaa", "bbbb", ["x"], cmp, Stats())


def _new(name: str, patch: int) -> ab.CheckDelta:
    return ab.CheckDelta(name, (3, 0), (0, 3), ab_counts.NEW, 0.05, patch, "bisected")


def test_mail_reply_headers_and_tags(tmp_path: Path) -> None:
    ok = _review(tmp_path, [ab.CheckDelta("x: a", (3, 0), (3, 0), ab_counts.UNCHANGED)])
    msg = email.message_from_bytes(review_mail.render(ok), policy=email.policy.default)
    assert msg["Subject"] == "Re: [PATCH v2 0/2] sub: two changes"
    assert msg["In-Reply-To"] == "<cover@example.org>"
    assert msg["References"] == "<v1cover@example.org> <cover@example.org>"
    assert msg["To"] == "Dev <dev@example.org>"
    body = msg.get_content()
    assert "Tested-by: rvharness <rvharness@localhost>" in body and "Reported-by" not in body
    bad = _review(tmp_path, [_new("x: a", 2)], cover=False)
    msg = email.message_from_bytes(review_mail.render(bad), policy=email.policy.default)
    assert msg["Subject"] == "Re: [PATCH v2 1/2] sub: change 1" and msg["In-Reply-To"] == "<p1@example.org>"
    body = msg.get_content()
    assert "Tested-by" not in body and "| Reported-by: rvharness <rvharness@localhost>" in body
    assert f"| Closes: {(tmp_path / 'review.md').resolve().as_uri()}" in body


def test_patchwork_checks_per_patch(tmp_path: Path) -> None:
    rv = _review(tmp_path, [_new("x: a", 2), ab.CheckDelta("x: b", (0, 3), (3, 0), ab_counts.FIXED, 0.05, 1)])
    written = patchwork.write(rv, tmp_path / "pw")
    one, two = (json.loads((tmp_path / "pw" / f).read_text()) for f in ("0001.json", "0002.json"))
    assert set(one) == {"state", "target_url", "context", "description"}
    assert (one["state"], two["state"]) == ("success", "fail")
    assert one["context"] == two["context"] == "rvharness"
    assert two["description"] == "1 new failure brought by this patch: x: a"
    assert one["target_url"] == (tmp_path / "review.md").resolve().as_uri()
    index = json.loads((tmp_path / "pw" / "index.json").read_text())
    assert index["0002.json"]["msgid"] == "p2@example.org" and len(written) == 3
    unplaced = _review(tmp_path, [ab.CheckDelta("x: a", (3, 0), (0, 3), ab_counts.NEW, 0.05, None)])
    assert {patchwork.check_for(unplaced, k)["state"] for k in (1, 2)} == {"warning"}


def test_junit_one_testcase_per_check_only_new_failures_fail(tmp_path: Path) -> None:
    rv = _review(tmp_path, [_new("x: a", 2), ab.CheckDelta("x: b", (0, 3), (0, 3), ab_counts.STILL),
                            ab.CheckDelta("x: model: c", (3, 0), (3, 0), ab_counts.UNCHANGED),
                            ab.CheckDelta("x: d", (0, 3), (3, 0), ab_counts.FIXED, 0.05, 1)],
                 titles=[ab.TitleDelta("BUG: oops", 0, 2, ab.NEW_TITLE, ("x",), 2)])
    path = tmp_path / "junit.xml"
    path.write_text(review_junit.render(rv))
    xmlschema.XMLSchema(str(XSD)).validate(str(path))
    xml = JUnitXml.fromfile(str(path))
    cases = {c.name: (s, c) for s in xml for c in s}
    assert set(cases) == {"x: a", "x: b", "x: model: c", "x: d", "report: BUG: oops"}
    failing = {n for n, (_, c) in cases.items() if any(isinstance(r, Failure) for r in c.result)}
    assert failing == {"x: a", "report: BUG: oops"}
    assert any(isinstance(r, Skipped) for r in cases["x: b"][1].result)
    props = {p.name: p.value for p in cases["x: a"][0].properties()}
    assert props["A passed"] == "3" and props["B failed"] == "3" and props["class"] == "new failure"
    assert props["patch"] == "2/2 sub: change 2"


def test_review_md_delta_first(tmp_path: Path) -> None:
    rv = _review(tmp_path, [ab.CheckDelta("x: ok", (3, 0), (3, 0), ab_counts.UNCHANGED), _new("x: a", 2),
                            ab.CheckDelta("x: old", (0, 3), (0, 3), ab_counts.STILL)])
    text = review_md.render(rv)
    lines = text.splitlines()
    assert lines[0] == ('rvharness review of "sub: two changes" (v2, 2 patches): DIFFERENT (worse): 1 worse, '
                        '0 better, 0 undecided of 3 scenario checks; 0 worse, 0 better, 0 undecided of 0 model '
                        'claims.')
    order = [text.index(s) for s in ("New failures", "2/2 sub: change 2:", "- x: a", "The base already fails",
                                     "- x: old", "\nbase:", "\ndecision:", "\nreproduce:", "\nSame\n")]
    assert order == sorted(order)
    assert "trailers:" in text and "Acked-by: M <m@x> (1/2)" in text
    assert "rvharness review s.mbox --repeats 3 --alpha 0.05 scenarios/x.yaml --out" in text


def test_reproduce_command_keeps_jobs(tmp_path: Path) -> None:
    from harness.review.record import ReviewParams
    assert "--repeats 2 --alpha 0.05 -j 3 a.yaml --out" in ReviewParams("s.mbox", ("a.yaml",), repeats=2, jobs=3).command(tmp_path)
    assert " -j " not in ReviewParams("s.mbox", ("a.yaml",)).command(tmp_path)
