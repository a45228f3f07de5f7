"""The statistics of `run --repeats` (harness/decide/rates.py): the exact
Clopper-Pearson interval of one failure rate, against published values and
against its definition through the beta distribution, and the smallest
rate that runs without a failure would have shown."""
from __future__ import annotations

import pytest
from scipy.stats import binom

from harness.decide.rates import clopper_pearson, rate_seen


@pytest.mark.parametrize("failed,runs,low,high", [
    (0, 5, 0.0, 0.5218),          # 1 - 0.025^(1/5)
    (2, 5, 0.0527, 0.8534),
    (5, 5, 0.4782, 1.0),
    (1, 10, 0.0025, 0.4450),
    (0, 20, 0.0, 0.1684),
    (10, 20, 0.2720, 0.7280),
])
def test_clopper_pearson_matches_known_values(failed: int, runs: int, low: float, high: float) -> None:
    got = clopper_pearson(failed, runs)
    assert got == pytest.approx((low, high), abs=5e-5)


@pytest.mark.parametrize("failed,runs", [(1, 3), (2, 5), (3, 7), (4, 12), (9, 10)])
def test_each_bound_leaves_two_and_a_half_percent_in_its_tail(failed: int, runs: int) -> None:
    """The definition, not the library: at the upper bound, k or fewer
    failures have probability 0.025; at the lower bound, k or more do."""
    low, high = clopper_pearson(failed, runs)
    assert binom.cdf(failed, runs, high) == pytest.approx(0.025, abs=1e-9)
    assert binom.sf(failed - 1, runs, low) == pytest.approx(0.025, abs=1e-9)


def test_the_interval_narrows_with_runs_and_holds_the_observed_rate() -> None:
    wide, narrow = clopper_pearson(2, 5), clopper_pearson(8, 20)
    assert narrow[1] - narrow[0] < wide[1] - wide[0]
    for k in range(6):
        low, high = clopper_pearson(k, 5)
        assert low <= k / 5 <= high


def test_no_runs_know_nothing_and_bad_counts_are_refused() -> None:
    assert clopper_pearson(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        clopper_pearson(6, 5)
    with pytest.raises(ValueError):
        clopper_pearson(-1, 5)


@pytest.mark.parametrize("runs,rate", [(1, 0.95), (5, 0.4507), (10, 0.2589), (30, 0.0950)])
def test_rate_seen_is_what_runs_without_a_failure_rule_out(runs: int, rate: float) -> None:
    p = rate_seen(runs)
    assert p == pytest.approx(rate, abs=5e-5)
    assert 1 - (1 - p) ** runs == pytest.approx(0.95)      # shows at least once with 95% probability
    with pytest.raises(ValueError):
        rate_seen(0)
