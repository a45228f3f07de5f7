"""Bisect logic without kernels: the search over a history with an injected
judge (a fake linear history, and a small real git repository with a merge),
verdicts from run classes, the failure-rate estimate and the runs a
confidence needs, and failure signatures."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from harness.bisect.search import search
from harness.decide.bisect_step import (
    BAD,
    CLEAN,
    GOOD,
    INFRA,
    INFRA_V,
    SIGNATURE,
    SKIP_V,
    SKIPPED,
    UNRELATED,
    Signature,
    classify,
    confidence_of,
    decide,
    failure_rate,
    runs_for,
)
from harness.kernel.gitbuild import GitTree
from harness.run.repeats import SuiteRun


class Linear:
    """c0..cN in a line, ordered for bisection the way git measures it:
    by min(ancestors in the range, the rest)."""

    def __init__(self, n: int) -> None:
        self.commits = [f"c{i}" for i in range(n + 1)]

    def range(self, bad: str, goods: list[str]) -> list[str]:
        lo = max(self.commits.index(g) for g in goods)
        return self.commits[lo + 1:self.commits.index(bad) + 1]

    def bisect_order(self, bad: str, goods: list[str]) -> list[str]:
        cands = self.range(bad, goods)
        n = len(cands)
        return sorted(cands, key=lambda c: -min(cands.index(c) + 1, n - cands.index(c) - 1))


def _judge(first_bad: int, skips=(), infra=()):
    calls: list[str] = []

    def judge(c: str) -> str:
        calls.append(c)
        i = int(c[1:])
        if c in skips:
            return SKIP_V
        if c in infra:
            return INFRA_V
        return BAD if i >= first_bad else GOOD
    return judge, calls


@pytest.mark.parametrize("first_bad", [1, 5, 9, 16])
def test_search_finds_the_first_bad_commit_in_log2_steps(first_bad: int) -> None:
    h = Linear(16)
    judge, calls = _judge(first_bad)
    res = search(h, "c0", "c16", judge, lambda v: v == BAD)
    assert res.candidates == [f"c{first_bad}"]
    assert len(calls) <= 4 + 1
    assert len(set(calls)) == len(calls)


def test_a_skipped_commit_next_to_the_culprit_leaves_both_as_candidates() -> None:
    h = Linear(16)
    judge, calls = _judge(9, skips={"c8"})
    res = search(h, "c0", "c16", judge, lambda v: v == BAD)
    assert res.candidates == ["c8", "c9"]
    assert "c8" in res.skipped


def test_a_skipped_commit_away_from_the_culprit_is_stepped_around() -> None:
    h = Linear(16)
    judge, calls = _judge(11, skips={"c8"})
    res = search(h, "c0", "c16", judge, lambda v: v == BAD)
    assert res.candidates == ["c11"]
    assert calls[0] == "c8" and "c7" in calls or "c9" in calls


def test_reverse_finds_the_first_fixed_commit() -> None:
    h = Linear(8)
    # Old commits fail (BAD), new ones pass: the fix is c6.
    judge, _ = _judge(6)
    flip = {BAD: GOOD, GOOD: BAD}
    res = search(h, "c0", "c8", lambda c: flip[judge(c)], lambda v: v == GOOD)
    assert res.candidates == ["c6"]


def test_infra_above_a_third_of_the_steps_stops_the_search() -> None:
    h = Linear(16)
    tested: list[str] = []
    judge, calls = _judge(9, infra={f"c{i}" for i in range(1, 16)})

    def counted(c: str) -> str:
        v = judge(c)
        tested.append(v)
        return v
    res = search(h, "c0", "c16", counted, lambda v: v == BAD,
                 steps_done=lambda: 2 + len(tested), infra_count=lambda: tested.count(INFRA_V))
    assert res.aborted and "more than a third" in res.aborted
    assert BAD not in tested[:len(tested)]    # an infra commit is never counted as bad


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "GIT_AUTHOR_DATE": "@0 +0000", "GIT_COMMITTER_DATE": "@0 +0000"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


def test_search_over_a_real_git_history_with_a_merge(tmp_path: Path) -> None:
    """base - a1 - a2 - merge - t1, with side branch base - b1 (bad) - b2 merged:
    the first bad commit is b1, found through git's --bisect-all order."""
    repo = tmp_path / "r"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "f").write_text("0\n")
    _git(repo, "add", "f")
    _git(repo, "commit", "-qm", "base")
    base = _git(repo, "rev-parse", "HEAD")
    shas = {}
    for name in ("a1", "a2"):
        (repo / name).write_text(name)
        _git(repo, "add", name)
        _git(repo, "commit", "-qm", name)
        shas[name] = _git(repo, "rev-parse", "HEAD")
    _git(repo, "checkout", "-q", "-b", "side", base)
    for name in ("b1", "b2"):
        (repo / name).write_text(name)
        _git(repo, "add", name)
        _git(repo, "commit", "-qm", name)
        shas[name] = _git(repo, "rev-parse", "HEAD")
    _git(repo, "checkout", "-q", "main")
    _git(repo, "merge", "-q", "--no-edit", "side")
    shas["merge"] = _git(repo, "rev-parse", "HEAD")
    (repo / "t1").write_text("t1")
    _git(repo, "add", "t1")
    _git(repo, "commit", "-qm", "t1")
    tip = _git(repo, "rev-parse", "HEAD")
    tree = GitTree(repo)
    bad_set = {shas["b1"], shas["b2"], shas["merge"], tip}
    res = search(tree, base, tip, lambda c: BAD if c in bad_set else GOOD, lambda v: v == BAD)
    assert res.candidates == [shas["b1"]]
    assert tree.parents(shas["merge"]) == [shas["a2"], shas["b2"]]
    assert tree.is_ancestor(base, tip) and not tree.is_ancestor(shas["a1"], shas["b2"])


# ------------------------------------------------------------ verdicts from runs

def test_decide_good_after_k_clean_runs_bad_at_once_on_the_signature() -> None:
    assert decide([(CLEAN, "")], 2, 10).verdict is None
    d = decide([(CLEAN, ""), (CLEAN, "")], 2, 10)
    assert d.verdict == GOOD and d.clean == 2
    d = decide([(CLEAN, ""), (SIGNATURE, "x")], 2, 10)
    assert d.verdict == BAD and "1/2" in d.reason


def test_decide_unrelated_is_skip_never_bad() -> None:
    d = decide([(UNRELATED, "unrelated failure: report: BUG: foo")], 2, 10)
    assert d.verdict == SKIP_V and "unrelated failure" in d.reason
    assert decide([(SKIPPED, "kernel lacks CONFIG_X")], 2, 10).verdict == SKIP_V


def test_decide_retries_infra_once() -> None:
    assert decide([(INFRA, "QEMU exited")], 2, 10).verdict is None
    assert decide([(INFRA, "QEMU exited"), (CLEAN, ""), (CLEAN, "")], 2, 10).verdict == GOOD
    d = decide([(INFRA, "QEMU exited"), (INFRA, "QEMU exited")], 2, 10)
    assert d.verdict == INFRA_V and d.verdict != BAD


def test_decide_verification_runs_go_on_to_n_after_the_signature() -> None:
    assert decide([(SIGNATURE, "")], 3, 10, stop_on_signature=False).verdict is None
    d = decide([(SIGNATURE, ""), (CLEAN, ""), (SIGNATURE, "")], 3, 10, stop_on_signature=False)
    assert d.verdict == BAD and d.signature == 2 and d.clean == 1


def test_decide_gives_up_at_max_runs() -> None:
    d = decide([(CLEAN, "")] * 3, 5, 3)
    assert d.verdict == SKIP_V and "within 3" in d.reason


def test_failure_rate_and_runs_for_a_confidence() -> None:
    assert failure_rate(3, 3) == pytest.approx(0.8)
    assert runs_for(0.8, 0.95) == 2            # 0.2^2 = 0.04 < 0.05; 0.2^1 = 0.2 is not
    assert (1 - 0.8) ** runs_for(0.8, 0.95) < 0.05
    assert runs_for(0.2, 0.95) == 14           # 0.8^14 = 0.044, 0.8^13 = 0.055
    assert runs_for(1.0, 0.95) == 1
    assert runs_for(0.5, 0.99) == 7
    assert confidence_of(2, 0.8) == pytest.approx(0.96)


# ------------------------------------------------------------ signatures

def _run(failed=(), titles=(), infra="", skipped="") -> SuiteRun:
    checks = {c: "fail" for c in failed}
    checks["s: always passes"] = "pass"
    return SuiteRun(1, checks, list(titles), infra, skipped)


def test_signature_is_the_union_of_the_failing_runs() -> None:
    runs = [_run(["s: a"]), _run(["s: a", "s: model: x"], ["BUG: soft lockup in f"]), _run()]
    sig = Signature.of_runs(runs)
    assert sig.checks == {"s: a", "s: model: x"} and sig.titles == {"BUG: soft lockup in f"}
    assert sig.describe()[-1] == "report: BUG: soft lockup in f"


def test_classify_against_a_signature() -> None:
    sig = Signature(frozenset({"s: a", "s: b"}), frozenset({"BUG: x"}))
    assert classify(_run(), sig)[0] == CLEAN
    assert classify(_run(["s: a"]), sig)[0] == SIGNATURE
    assert classify(_run(["s: a"], ["BUG: x"]), sig)[0] == SIGNATURE
    # The signature with another check failing beside it is still the signature.
    cls, why = classify(_run(["s: a", "s: c"]), sig)
    assert cls == SIGNATURE and "also failed: s: c" in why
    # Another check failing without the signature is not.
    cls, why = classify(_run(["s: c"]), sig)
    assert cls == UNRELATED and "s: c" in why
    # After a hang the signature's checks are errors (not evaluated): not the signature.
    hung = SuiteRun(1, {"s: a": "error", "s: b": "error", "s: guest responded": "fail"})
    cls, why = classify(hung, sig)
    assert cls == UNRELATED and "s: guest responded" in why
    cls, why = classify(_run(["s: a"], ["Oops in g"]), sig)
    assert cls == UNRELATED and "report: Oops in g" in why
    assert classify(_run(infra="QEMU exited"), sig)[0] == INFRA
    assert classify(_run(skipped="lacks X"), sig)[0] == SKIPPED


def test_checks_narrow_the_signature_by_hand() -> None:
    runs = [_run(["s: a", "s: noise"])]
    sig = Signature.of_runs(runs, only=["a"])
    assert sig.checks == {"s: a"} and sig.narrowed
    # Other failures are ignored once narrowed; a new crash is not.
    assert classify(_run(["s: noise"]), sig)[0] == CLEAN
    assert classify(_run(["s: a", "s: other"]), sig)[0] == SIGNATURE
    assert classify(_run(["s: a"], ["Oops in g"]), sig)[0] == UNRELATED
    assert not Signature.of_runs(runs, only=["nothing"]).checks


def test_the_step_log_survives_a_line_cut_by_a_kill(tmp_path: Path) -> None:
    from harness.bisect.steplog import StepLog

    log = StepLog(tmp_path / "steps.jsonl")
    log.append({"type": "step", "commit": "a"})
    log.append({"type": "run", "image": "x"})
    with open(tmp_path / "steps.jsonl", "a") as fh:
        fh.write('{"type": "step", "commit": "b", "verd')      # SIGKILL mid-write
    again = StepLog(tmp_path / "steps.jsonl")
    assert [r["type"] for r in again.records] == ["step", "run"]
    assert again.of("step")[0]["commit"] == "a" and "time" in again.of("step")[0]
    again.append({"type": "step", "commit": "c"})
    assert [r.get("commit") for r in StepLog(tmp_path / "steps.jsonl").of("step")] == ["a", "c"]


def test_recipe_patches_are_applied_left_out_when_contained_or_make_a_skip(tmp_path: Path) -> None:
    """TreeBuilder's patch plan on a small real repository: a patch that
    applies is applied, one the commit already contains (it applies in
    reverse) is left out, one that does neither names itself."""
    from harness.core.arch import RISCV64
    from harness.kernel.gitbuild import TreeBuilder
    from harness.kernel.recipe import Recipe, Source

    repo = tmp_path / "r"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    shas = []
    for text in ("one\ntwo\nthree\n", "one\nTWO\nthree\n", "one\n2\nthree\n"):
        (repo / "f.c").write_text(text)
        _git(repo, "add", "f.c")
        _git(repo, "commit", "-qm", f"set {text.split()[1]}")
        shas.append(_git(repo, "rev-parse", "HEAD"))
    patch = tmp_path / "fix.patch"
    patch.write_text(_git(repo, "diff", shas[0], shas[1]) + "\n")
    recipe = Recipe("t", None, RISCV64, Source("tree", str(repo)), "tinyconfig", (), (patch,))
    b = TreeBuilder(GitTree(repo), recipe)
    assert b._patch_plan(shas[0]) == ([patch], [], "")
    assert b._patch_plan(shas[1]) == ([], [patch], "")
    apply, contained, why = b._patch_plan(shas[2])
    assert why == "recipe patch fix.patch neither applies nor is contained"
    # The same content under two commits has one cache key; other patches, another.
    assert b.key_for(shas[0], [patch]) != b.key_for(shas[0], [])
    tree = GitTree(repo)
    revert, note = tree.revert_applies(shas[1], shas[1])
    assert note == "" and revert == tree.tree_of(shas[0])
    assert tree.revert_applies(shas[1], shas[2])[0] is None
    made = tree.commit_tree(revert, shas[1], "revert")
    assert tree.tree_of(made) == tree.tree_of(shas[0]) and tree.parents(made) == [shas[1]]
    # The user's checkout is untouched by all of this.
    assert (repo / "f.c").read_text() == "one\n2\nthree\n" and _git(repo, "status", "--porcelain") == ""


def _result(status: str = "found") -> dict:
    from dataclasses import asdict

    from harness.bisect.bisector import BisectParams
    from harness.bisect.steplog import Tested

    def tc(short, verdict, clean, sig):
        return {"commit": short * 3, "short": short, "verdict": verdict, "clean": clean, "signature": sig,
                "unrelated": 0, "infra": 0, "runs": clean + sig, "reason": "r"}
    tested = [Tested(1, "b" * 40, "b" * 12, "bad one", "bad endpoint", BAD, "signature failed in 3/3 runs",
                     image="i1", build="built", build_seconds=12.0, signature=3),
              Tested(2, "a" * 40, "a" * 12, "good one", "good endpoint", GOOD, "2/2 runs clean",
                     image="i0", build="built", build_cached=True, clean=2),
              Tested(3, "c" * 40, "c" * 12, "docs | only", "bisect", GOOD, "same Image as aaaaaaaaaaaa: 2/2 runs clean",
                     image="i0", build="built", same_image_as="a" * 12, clean=2)]
    return {"status": status, "message": "m", "params": asdict(BisectParams("/t", "a", "b", ["s.yaml"])),
            "command": BisectParams("/t", "a", "b", ["s.yaml"]).command(),
            "culprit": {"id": "d" * 40, "short": "d" * 12, "subject": "Revert x", "author": "A <a@b>",
                        "date": "2026-01-01", "diffstat": " f.c | 2 +-\n 1 file changed", "parents": ["c" * 40]},
            "confidence": 0.96, "flags": [], "failure_rate": 0.8, "runs_per_good": 2, "p_culprit": 0.97,
            "odds": {"p_culprit": 0.97, "culprit": "d" * 40, "target": 0.95, "budget": 40, "extra_runs": 1,
                     "commits": [{"commit": "a" * 40, "short": "a" * 12, "failed": 0, "runs": 2, "p_culprit": 0.0},
                                 {"commit": "d" * 40, "short": "d" * 12, "failed": 2, "runs": 2, "p_culprit": 0.97},
                                 {"commit": "b" * 40, "short": "b" * 12, "failed": 3, "runs": 3, "p_culprit": 0.03}]},
            "verification": {"n": 2, "checks": {"culprit": True, "parent": True, "revert": True}, "revert_note": "",
                             "culprit": tc("d" * 12, BAD, 0, 2), "parent": tc("c" * 12, GOOD, 2, 0),
                             "revert": tc("e" * 12, GOOD, 2, 0)},
            "candidates": [], "signature": {"checks": ["s: a check"], "titles": ["BUG: x"], "narrowed": False},
            "tested": [asdict(t) for t in tested],
            "stats": {"wall_seconds": 100.0, "builds": 3, "build_seconds": 30.0, "build_wait_seconds": 5.0,
                      "boots": 7, "boot_seconds": 60.0, "steps": 3}}


def test_bisect_md_and_junit_from_a_result() -> None:
    from junitparser import JUnitXml

    from harness.outputs import bisect_report

    r = _result()
    md = bisect_report.markdown(r)
    assert md.splitlines()[0] == 'rvharness bisect: dddddddddddd ("Revert x") is the first bad commit'
    for text in ("commit " + "d" * 40, "P(culprit) = 0.970 that dddddddddddd is the first bad commit (target 0.95)",
                 "Clean-run power: 0.960 (target 0.95); this is not P(culprit)", "| dddddddddddd | 2/2 | 0.9700 |", "Verification (N = 2 runs each):",
                 "  - culprit dddddddddddd fails N/N: ok: 2/2 runs failed with the signature, 0/2 clean",
                 "  - report: BUG: x", "    rvharness bisect --tree /t --good a --bad b", "| 3 | cccccccccccc docs / only |",
                 "plus 5 s waiting for other builds"):
        assert text in md, text
    xml = JUnitXml.fromstring(bisect_report.junit(r))
    cases = [c for suite in xml for c in suite]
    assert [c.result[0].__class__.__name__ if c.result else "pass" for c in cases] == ["Failure", "pass", "pass", "pass"]
    assert cases[-1].name == "P(culprit) = 0.970 for dddddddddddd"
    low = _result()
    low["odds"]["p_culprit"] = 0.9
    assert JUnitXml.fromstring(bisect_report.junit(low)).__iter__().__next__().failures == 2
    amb = _result("inconclusive")
    amb.pop("culprit"), amb.pop("verification"), amb.pop("confidence"), amb.pop("odds")
    amb["candidates"] = [{"short": "x" * 12, "subject": "one"}, {"short": "y" * 12, "subject": "two"}]
    md = bisect_report.markdown(amb)
    assert "Candidates (2), the first bad commit is one of:" in md and "  - yyyyyyyyyyyy two" in md
