"""The decision core (harness/decide/rates.py, compare.py, posterior.py):
pure tests of the decisions, each case one the old rules got wrong."""
from __future__ import annotations

import random

import pytest
from scipy.stats import fisher_exact

from harness.decide import compare, rates
from harness.decide.ab_counts import NEW, UNDECIDED, classify
from harness.decide.posterior import Priors, Search, posterior


@pytest.mark.parametrize("an,bn", [(3, 3), (6, 6), (10, 12), (5, 9)])
def test_p_worse_is_fishers_one_sided_p(an: int, bn: int) -> None:
    for af in range(an + 1):
        for bf in range(bn + 1):
            ref = fisher_exact([[bf, bn - bf], [af, an - af]], alternative="greater").pvalue
            assert rates.p_worse((af, an), (bf, bn)) == pytest.approx(ref, abs=1e-12)


def test_min_p_is_the_most_lopsided_split() -> None:
    assert rates.min_p(3, 3, 0) == 1.0                          # never failed: never testable
    assert rates.min_p(3, 3, 3) == pytest.approx(1 / 20)        # all three on one side
    # More failures than one side has runs: 1 of 6 on A and 6 of 6 on B is the extreme.
    assert rates.min_p(6, 6, 7) == pytest.approx(rates.p_worse((1, 6), (6, 6)))


def test_tarone_leaves_out_what_cannot_be_significant() -> None:
    # One real change among 100 checks that never failed: Holm over 100
    # would need p <= 0.0005; Tarone tests the one that can be significant.
    ps = [0.001] + [1.0] * 100
    mins = [0.0001] + [1.0] * 100
    assert rates.tarone_holm(ps, mins, 0.05) == [True] + [False] * 100
    assert rates.tarone_holm([0.001] * 101, [0.0001] * 101, 0.05) == [False] * 101


def test_a_flaky_base_does_not_hide_a_break() -> None:
    """10% on the base, 100% with the series: the old rule ("mixed on A is
    flaky whatever B did") called it flaky, exit 0."""
    v = compare.judge({"c": ((1, 10), (10, 10))})["c"]
    assert v.outcome == compare.DIFFERENT and v.direction == compare.WORSE and v.worse
    assert classify(v) == NEW
    assert compare.exit_code({"c": v}) == 1


def test_one_failure_in_three_is_not_a_new_failure() -> None:
    """p = 0.5: the old rule ("never failed on A, failed on B") said NEW and exit 1."""
    v = compare.judge({"c": ((0, 3), (1, 3))})["c"]
    assert v.outcome == compare.UNKNOWN and not v.worse and classify(v) == UNDECIDED
    assert compare.exit_code({"c": v}) == 3


def test_a_barely_tested_side_is_unknown_not_unchanged() -> None:
    v = compare.judge({"c": ((0, 10), (0, 1))})["c"]
    assert v.outcome == compare.UNKNOWN


def test_same_states_the_rise_it_would_have_followed_up() -> None:
    v = compare.judge({"c": ((0, 3), (0, 3))})["c"]
    assert v.outcome == compare.SAME
    assert v.followup == pytest.approx(0.42)                    # 1 - 0.58^3 >= 0.8
    assert "a rise from 0% to 42% would have been followed up with 80% probability" in v.text()
    assert compare.with_detectable(v).detectable is None       # 3 runs alone report no rise at 0.05/3


def test_a_deterministic_break_needs_a_second_round() -> None:
    design = compare.Design()
    assert [design.runs_after(k) for k in range(1, design.max_rounds + 1)] == [1, 5, 9]
    first = compare.judge({"c": ((0, 1), (1, 1))}, design)["c"]
    assert first.outcome == compare.UNKNOWN and first.p == pytest.approx(0.5)
    assert compare.next_round({"c": first}, {"s": 1}, lambda _n: ("s",), design) == ["s"]
    second = compare.judge({"c": ((0, 5), (5, 5))}, design)["c"]
    assert second.worse and compare.decided({"c": second}) and second.p == pytest.approx(1 / 252)


def test_the_false_positive_rate_holds_on_identical_kernels() -> None:
    """2,000 simulated reviews of identical kernels (12 checks, three at 10%,
    30% and 60%): family-wise false positives stay under alpha."""
    rng = random.Random(7)
    rates_ = [0.0] * 9 + [0.1, 0.3, 0.6]
    design = compare.Design()
    false = 0
    for _ in range(2000):
        a = [[rng.random() < p for p in rates_] for _ in range(design.max_runs)]
        b = [[rng.random() < p for p in rates_] for _ in range(design.max_runs)]
        for n in (design.runs_after(k) for k in range(1, design.max_rounds + 1)):
            counts = {str(k): ((sum(r[k] for r in a[:n]), n), (sum(r[k] for r in b[:n]), n))
                      for k in range(len(rates_))}
            v = compare.judge(counts, design)
            if compare.exit_code(v) == 1:
                false += 1
                break
            if compare.decided(v):
                break
    assert false / 2000 <= design.alpha


def test_posterior_names_the_culprit_and_says_how_sure() -> None:
    # Good endpoint (index 0) clean 3 times; commits 1..4; 3 and 4 fail.
    counts = [(0, 3), (0, 2), (0, 2), (2, 2), (3, 3)]
    post = posterior(counts, first=1)
    assert post[0] == 0.0 and max(range(5), key=post.__getitem__) == 3
    assert sum(post) == pytest.approx(1.0)


def test_a_flaky_good_commit_lowers_confidence_instead_of_misleading() -> None:
    clean = posterior([(0, 3), (0, 4), (0, 4), (4, 4), (4, 4)], first=1)
    noisy = posterior([(0, 3), (1, 4), (0, 4), (4, 4), (4, 4)], first=1)
    assert max(range(5), key=noisy.__getitem__) == 3
    assert noisy[3] < clean[3]


def test_bayesian_search_is_calibrated_on_simulated_histories() -> None:
    """300 histories of 16 commits, p_bad 0.5: when it stops at >= 0.95,
    it names the right commit at least 90% of the time (bench/decide
    measures 10,000 a setting; this is the test's quick guard)."""
    rng = random.Random(3)
    right = stopped = 0
    for _ in range(300):
        culprit = rng.randint(1, 16)
        s = Search(17, target=0.95, first=1)
        for _ in range(300):
            if s.done():
                break
            c = s.next_commit()
            s.add(c, rng.random() < (0.5 if c >= culprit else 0.0))
        best, p = s.best()
        if p >= 0.95:
            stopped += 1
            right += best == culprit
    assert stopped >= 290 and right / stopped >= 0.90


def test_point_masses_make_one_run_decisive_and_a_contrary_run_undoes_it() -> None:
    """The mixture priors bench/decide measured (off by default: they cost
    calibration): with p_bad = 1 likely, one clean run of commit 2 moves the
    culprit after it; a failure-free bad side is then contradicted by one
    clean run of commit 4, and the weight goes back to the uniform part."""
    sure = Priors(bad_one=0.9)
    counts = [(0, 2), (0, 0), (0, 1), (0, 0), (1, 1), (2, 2)]
    assert sum(posterior(counts, sure, first=1)[3:]) > sum(posterior(counts, first=1)[3:])
    mixed = [(0, 2), (0, 0), (0, 1), (0, 0), (1, 2), (2, 2)]
    assert posterior(mixed, sure, first=1)[4] < posterior(counts, sure, first=1)[4]
    # A point mass at p_good = 0: one failure rules out every later culprit.
    never = Priors(good_zero=1.0)
    post = posterior([(0, 2), (0, 1), (1, 1), (0, 0), (2, 2)], never, first=1)
    assert post[3] == post[4] == 0.0 and post[2] == max(post)
