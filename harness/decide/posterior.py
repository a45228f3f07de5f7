"""Bisection with a posterior over the culprit (git-bayesect's idea).

Commits 0..n-1 lie between the good endpoint (before 0) and the bad one
(commit n-1 is the bad endpoint itself). Hypothesis c: commit c is the
first bad one, so commits c.. fail with one unknown rate p_bad and commits
before c with one unknown rate p_good (false failures: host noise, a flaky
check). Each commit tested has (failed, runs) counts; the likelihood of c
integrates both rates over Beta priors, which gives Beta functions in
closed form:

    L(c) = B(a_g + F_<c, b_g + P_<c) / B(a_g, b_g) * B(a_b + F_>=c, b_b + P_>=c) / B(a_b, b_b)

(F, P: failed and passed runs summed over the commits on each side). The
posterior is the prior (uniform) times L, normalised. It uses every run of
every commit, the endpoints' included, so a flaky failure on a good commit
lowers confidence instead of redirecting the search, and a commit that
fails once in ten is still placed.

The next commit to run is the one whose next run is expected to shrink the
posterior's entropy most (expected information gain, as in Bayesian
bisection); the search stops when one commit holds `target` of the
posterior. Calibration (among searches that stop at >= 0.95, the share that
named the right commit) is measured by bench/decide on synthetic histories."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy.special import gammaln

Count = tuple[int, int]          # (failed, runs)


@dataclass(frozen=True)
class Priors:
    """The priors of the two failure rates.

    p_good, the false-failure rate of a good kernel: Beta(2, 18), mean 10%
    and little mass at 0. With Beta(1, 19), searches stopping at >= 0.95
    were right 93.2% of the time at p_bad 0.3, p_good 0.05 (overconfident);
    with Beta(2, 18), 95.3%. A point mass at p_good = 0 (`good_zero`) saves
    boots when good kernels never fail (73.8 against 80.7 at p_bad 0.3 with
    a mass of 0.1; 70.5 with 0.2) but makes the posterior overconfident when
    they do: right 95.2% (0.1) and 94.0% (0.2, 10,000 histories) at p_good
    0.05, against 96.3% without it (bench/decide's simulator, 2,000
    histories of 16 commits each, with a mass of 0.2 at p_bad = 1 as well).
    Calibration is what a maintainer acts on, so it is 0.

    p_bad: uniform, with no point mass at 1 (`bad_one`) either: a mass of
    0.2 there saved 1.4 boots when a break shows in every run (8.3 against
    9.7) and none at p_bad 0.5 (34.2 against 34.1), where it made the
    posterior overconfident (95.1% right against 96.9%, 4,000 histories).
    The mixtures stay for measuring them (tests/decide)."""
    good: tuple[float, float] = (2.0, 18.0)
    bad: tuple[float, float] = (1.0, 1.0)
    good_zero: float = 0.0
    bad_one: float = 0.0


def _sides(counts: Sequence[Count], priors: Priors) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per hypothesis c: (failed, runs) before c (the good side) and from c
    on (the bad side), raw counts."""
    f = np.array([c[0] for c in counts], dtype=float)
    r = np.array([c[1] for c in counts], dtype=float)
    pre_f = np.concatenate(([0.0], np.cumsum(f)))[:-1]
    pre_r = np.concatenate(([0.0], np.cumsum(r)))[:-1]
    return pre_f, pre_r, f.sum() - pre_f, r.sum() - pre_r


def _lbeta(a, b):
    return gammaln(a) + gammaln(b) - gammaln(a + b)


def _side(failed: np.ndarray, runs: np.ndarray, beta: tuple[float, float], mass: float,
          at_one: bool) -> tuple[np.ndarray, np.ndarray]:
    """One side's log marginal likelihood under its mixture prior, and the
    posterior predictive chance that its next run fails. The point mass
    sits at rate 0 (at_one False) or 1: it explains the data only when no
    run failed (or none passed)."""
    a, b = beta
    log_beta = _lbeta(a + failed, b + runs - failed) - _lbeta(a, b)
    contrary = failed if not at_one else runs - failed
    with np.errstate(divide="ignore"):
        log_point = np.where(contrary == 0, np.log(mass) if mass > 0 else -np.inf, -np.inf)
        log_rest = np.log1p(-mass) + log_beta if mass < 1 else np.full_like(log_beta, -np.inf)
    log_l = np.logaddexp(log_point, log_rest)
    # A hypothesis neither part explains (log_l = -inf) gets no weight at all.
    with np.errstate(invalid="ignore"):
        w_point = np.where(np.isfinite(log_l), np.exp(log_point - log_l), 0.0)
    mean = (1.0 - w_point) * (a + failed) / (a + b + runs) + (w_point if at_one else 0.0)
    return log_l, mean


def _model(counts: Sequence[Count], priors: Priors, first: int,
           excluded: Sequence[int] = ()) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per hypothesis c: log likelihood, and the predictive failure chance
    of a run on the good side and on the bad side. Hypotheses before
    `first` and those `excluded` (a commit whose Image is byte-identical to
    its predecessor's cannot be the first bad one) have likelihood 0."""
    good_f, good_r, bad_f, bad_r = _sides(counts, priors)
    lg, mean_g = _side(good_f, good_r, priors.good, priors.good_zero, at_one=False)
    lb, mean_b = _side(bad_f, bad_r, priors.bad, priors.bad_one, at_one=True)
    out = lg + lb
    out[:first] = -np.inf
    out[list(excluded)] = -np.inf
    return out, mean_g, mean_b


def _normalise(logl: np.ndarray) -> np.ndarray:
    w = np.exp(logl - logl.max())
    return w / w.sum()


def posterior(counts: Sequence[Count], priors: Priors = Priors(), first: int = 0,
              excluded: Sequence[int] = ()) -> list[float]:
    """P(commit c is the culprit) for every c, given each commit's counts.
    Commits before `first` cannot be the culprit (the good endpoint, whose
    runs still count towards p_good)."""
    return _normalise(_model(counts, priors, first, excluded)[0]).tolist()


def _entropy(p: np.ndarray) -> np.ndarray:
    """Entropy of each row (or of a vector)."""
    q = np.where(p > 0, p, 1.0)
    return -(p * np.log(q)).sum(axis=-1)


def gains(counts: Sequence[Count], priors: Priors = Priors(), first: int = 0,
          excluded: Sequence[int] = ()) -> np.ndarray:
    """Expected drop in the posterior's entropy from one more run of each
    commit. One more run of commit i multiplies the likelihood of c by the
    posterior mean of commit i's rate under c: the bad side's mean when
    i >= c, the good side's otherwise; that closed form lets every i be
    weighed at once (an n x n array)."""
    logl, mean_g, mean_b = _model(counts, priors, first, excluded)
    post = _normalise(logl)
    n = len(counts)
    i = np.arange(n)[:, None]
    c = np.arange(n)[None, :]
    mean = np.where(i >= c, mean_b[None, :], mean_g[None, :])    # [i, c]
    fail = post * mean                                            # unnormalised posterior after a failure
    ok = post * (1.0 - mean)
    q = fail.sum(axis=1)                                          # predictive chance that run i fails
    h_fail = _entropy(fail / np.where(q > 0, q, 1.0)[:, None])
    h_ok = _entropy(ok / np.where(q < 1, 1.0 - q, 1.0)[:, None])
    return _entropy(post) - (q * h_fail + (1.0 - q) * h_ok)


# Below this expected gain (nats) per run, one more run is not worth a boot:
# an undecidable split (a commit that does not build next to the culprit)
# falls below it after 4-5 runs, while a flaky culprit's neighbour
# still gains >= 0.04 per run (tests/decide).
MIN_GAIN = 0.001


@dataclass
class Search:
    """The state of one Bayesian bisection: counts per commit, the next
    commit to run, and whether a commit holds `target` of the posterior."""
    n: int
    target: float = 0.95
    first: int = 0               # 1 when commit 0 is the good endpoint
    priors: Priors = field(default_factory=Priors)
    counts: list[Count] = field(default_factory=list)
    excluded: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [(0, 0)] * self.n

    def add(self, i: int, failed: bool) -> None:
        f, r = self.counts[i]
        self.counts[i] = (f + int(failed), r + 1)

    def posterior(self) -> list[float]:
        return posterior(self.counts, self.priors, self.first, self.excluded)

    def best(self) -> tuple[int, float]:
        post = self.posterior()
        c = max(range(self.n), key=post.__getitem__)
        return c, post[c]

    def done(self) -> bool:
        return self.best()[1] >= self.target

    def next_commit(self, candidates: Sequence[int] | None = None) -> int:
        """The commit whose next run is expected to tell most (ties: the
        lower index)."""
        return self.next_and_gain(candidates)[0]

    def next_and_gain(self, candidates: Sequence[int] | None = None) -> tuple[int, float]:
        """next_commit and its expected information gain (nats): near 0 when
        no run of any candidate can move the posterior, e.g. when what is
        left is split between a commit that does not build and its neighbour."""
        g = gains(self.counts, self.priors, self.first, self.excluded)
        pool = range(self.n) if candidates is None else candidates
        i = max(pool, key=lambda i: (round(float(g[i]), 12), -i))
        return i, float(g[i])
