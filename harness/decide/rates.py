"""Failure rates from small counts of runs, and their comparison.

Every function here is pure and takes (failed, runs) counts. The tests are
exact ones on the hypergeometric and binomial distributions, computed with
math.comb (a review rarely has more than 20 runs a side, and the simulator
in bench/decide calls them millions of times; scipy.stats.fisher_exact
gives the same p-values, which tests/decide checks), never normal
approximations:

- `p_worse(a, b)`: Fisher's exact test, one-sided, of "B fails no more often
  than A" (conditional on the total number of failures).
- `min_p(a_runs, b_runs, failures)`: the smallest p-value that test can give
  with these margins; Tarone (1990, "A modified Bonferroni method for
  discrete data", Biometrics 46:515) uses it to leave out of a multiple
  test the checks that could never reach significance (a check that never
  failed on either side cannot), which keeps the correction from growing
  with every check that simply passes.
- `tarone_holm(ps, min_ps, alpha)`: Holm's step-down over the checks that
  Tarone's rule keeps: family-wise error <= alpha over all checks.
- `detectable_rise(...)`: the smallest true failure rate of B that a
  comparison at this level would have reported with the given power.
- `clopper_pearson(failed, runs)`: the exact 95% interval of one failure
  rate (`run --repeats`), and `rate_seen(runs)`: the smallest rate that
  runs without a failure would have shown with 95% probability."""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Sequence

Count = tuple[int, int]          # (failed, runs)


def _hyper_sf(k: int, total_runs: int, b_runs: int, failures: int) -> float:
    """P(B holds at least k of the failures) when `failures` of total_runs
    runs failed and b_runs of them are B's: the hypergeometric tail, exact
    (math.comb; these counts are small)."""
    den = math.comb(total_runs, failures)
    num = sum(math.comb(b_runs, j) * math.comb(total_runs - b_runs, failures - j)
              for j in range(max(k, 0), min(b_runs, failures) + 1))
    return num / den


@lru_cache(maxsize=1 << 16)
def p_worse(a: Count, b: Count) -> float:
    """One-sided Fisher p of B failing more often than A: the chance, were
    both the same kernel, that the failures split at least this much
    towards B given their total."""
    (af, an), (bf, bn) = a, b
    total = af + bf
    if an == 0 or bn == 0 or total == 0:
        return 1.0
    return _hyper_sf(bf, an + bn, bn, total)


def p_better(a: Count, b: Count) -> float:
    """One-sided Fisher p of B failing less often than A."""
    return p_worse(b, a)


@lru_cache(maxsize=1 << 16)
def min_p(a_runs: int, b_runs: int, failures: int) -> float:
    """The smallest one-sided p either direction can reach when `failures`
    runs failed out of a_runs + b_runs: as many of them as fit on one side."""
    if failures == 0 or a_runs == 0 or b_runs == 0:
        return 1.0
    n = a_runs + b_runs
    if failures >= n:
        return 1.0
    on_b = _hyper_sf(min(failures, b_runs), n, b_runs, failures)
    on_a = _hyper_sf(min(failures, a_runs), n, a_runs, failures)
    return min(on_b, on_a)


def tarone_holm(ps: Sequence[float], min_ps: Sequence[float], alpha: float) -> list[bool]:
    """Which hypotheses to reject, family-wise error <= alpha.

    Tarone: the smallest K such that at most K hypotheses have a minimal
    attainable p <= alpha / K; only those K are testable, and a Bonferroni
    or Holm correction over K (not over all) keeps the error rate. Holm's
    step-down then runs over the testable ones."""
    n = len(ps)
    if n == 0:
        return []
    k = 1
    while k < n and sum(m <= alpha / k for m in min_ps) > k:
        k += 1
    testable = [i for i in range(n) if min_ps[i] <= alpha / k]
    reject = [False] * n
    order = sorted(testable, key=lambda i: ps[i])
    m = len(order)
    for rank, i in enumerate(order):
        if ps[i] <= alpha / (m - rank):
            reject[i] = True
        else:
            break
    return reject


def _pmf(k: int, n: int, p: float) -> float:
    return math.comb(n, k) * p ** k * (1.0 - p) ** (n - k)


@lru_cache(maxsize=1 << 14)
def power_worse(a: Count, b_runs: int, p_b: float, level: float) -> float:
    """The chance that b_runs runs of a kernel failing with rate p_b give
    p_worse <= level against A's observed counts."""
    return sum(_pmf(k, b_runs, p_b) for k in range(b_runs + 1) if p_worse(a, (k, b_runs)) <= level)


def detectable_rise(a: Count, b_runs: int, level: float, power: float = 0.8) -> float | None:
    """The smallest failure rate of B (in steps of 1%) that a comparison
    with A's counts and b_runs runs of B would report at `level` with the
    given power; None when no rate would (too few runs)."""
    for pct in range(1, 101):
        if power_worse(a, b_runs, pct / 100, level) >= power:
            return pct / 100
    return None


@lru_cache(maxsize=1 << 14)
def followup_rise(a: Count, b_runs: int, power: float = 0.8) -> float | None:
    """The smallest failure rate of B at which its b_runs runs would have
    failed more often than A's observed rate with the given power: what the
    screening of a round (more runs for any check that fails more on B)
    catches. None when even 100% would not."""
    af, an = a
    rate_a = af / an if an else 0.0
    for pct in range(1, 101):
        p = pct / 100
        above = sum(_pmf(k, b_runs, p) for k in range(b_runs + 1) if k / b_runs > rate_a)
        if above >= power:
            return p
    return None


def clopper_pearson(failed: int, runs: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper-Pearson) two-sided interval of a failure rate seen
    as `failed` of `runs` runs: every true rate the binomial would not
    reject at 1 - confidence, split equally between the tails. Exact, not a
    normal approximation, because `run --repeats` has 2 to 20 runs and
    often 0 failures (0/5 gives 0-52%, 2/5 gives 5.3-85.3%). scipy.stats
    computes it (binomtest's proportion_ci, method="exact"). With no run
    nothing is known: (0.0, 1.0)."""
    if not 0 <= failed <= runs:
        raise ValueError(f"failed must be within 0..runs, got {failed} of {runs}")
    if runs == 0:
        return 0.0, 1.0
    from scipy.stats import binomtest  # heavy: loaded only when an interval is asked for

    ci = binomtest(failed, runs).proportion_ci(confidence_level=confidence, method="exact")
    return float(ci.low), float(ci.high)


def rate_seen(runs: int, probability: float = 0.95) -> float:
    """The smallest true failure rate p that `runs` independent runs would
    have shown at least once with the given probability, 1 - (1-p)^runs =
    probability: what a check that never failed in those runs rules out
    (0 of 5 failed: 45% or more would have shown with 95% probability)."""
    if runs < 1:
        raise ValueError(f"runs must be at least 1, got {runs}")
    return 1.0 - (1.0 - probability) ** (1.0 / runs)
