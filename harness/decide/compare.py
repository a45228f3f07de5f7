"""SAME / DIFFERENT / UNKNOWN for every check of two kernels, in rounds.

Chromium Pinpoint's shape (compare.py: SAME, DIFFERENT, UNKNOWN, and more
repeats while UNKNOWN), with the error rates a patchwork check needs:

- DIFFERENT: the check fails more (or less) often on B than on A, by
  Fisher's exact test, one-sided, each direction a hypothesis. The
  family-wise false-positive rate over every check of the review and every
  round is at most `alpha`: within a round Tarone's rule and Holm's
  step-down (rates.tarone_holm) at alpha / max_rounds, and over rounds a
  Bonferroni split of alpha across the looks the budget allows (the
  simplest alpha-spending function; a round that is never run spends
  nothing, so stopping early is safe).
- SAME: not DIFFERENT, no lean either way (both one-sided p > LEAN), and
  enough runs that a rise of B's failure rate by `min_effect` would have
  shown as more failures on B with probability >= `power` and been run
  again: the statement is "with n runs each, a rise from x% to y% would
  have been followed up with 80% probability".
- UNKNOWN: anything else: too few runs, or a lean that is not yet
  significant. Its scenario runs again next round; at the end of the
  budget UNKNOWN stays UNKNOWN (exit 3), never "unchanged".

A side with fewer than `min_judged` judged runs of a scenario gives UNKNOWN
for every check of it, whatever the counts. bench/decide measures the
false-positive rate and power of exactly this code on synthetic A/B pairs."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from harness.decide import rates
from harness.decide.rates import Count

SAME, DIFFERENT, UNKNOWN = "SAME", "DIFFERENT", "UNKNOWN"
WORSE, BETTER = "worse", "better"
# A one-sided p at or below this is a lean: the check runs again rather than
# be called SAME (1 failure in 3 on B against none on A gives 0.5).
LEAN = 0.5


@dataclass(frozen=True)
class Design:
    alpha: float = 0.05          # family-wise false-positive rate, all checks and rounds
    power: float = 0.8
    min_effect: float = 0.5      # the rise in failure rate SAME promises to have followed up
    step: int = 3                # runs per side added by a round
    max_runs: int = 12           # per side and scenario
    min_judged: int = 2          # judged runs a side needs before anything but UNKNOWN

    @property
    def max_rounds(self) -> int:
        return max(1, -(-self.max_runs // self.step))

    @property
    def level(self) -> float:
        """The family-wise level of one round (Bonferroni over the looks)."""
        return self.alpha / self.max_rounds


@dataclass(frozen=True)
class CheckVerdict:
    name: str
    a: Count                     # (failed, judged runs) on A
    b: Count
    outcome: str                 # SAME, DIFFERENT, UNKNOWN
    direction: str | None        # WORSE or BETTER for DIFFERENT (and a lean)
    p: float                     # the smaller one-sided p
    level: float                 # the round's family-wise level it was tested at
    followup: float | None       # B's failure rate a round would have followed up with `power`
    detectable: float | None     # B's failure rate this comparison alone reports with `power`

    @property
    def worse(self) -> bool:
        return self.outcome == DIFFERENT and self.direction == WORSE

    def text(self) -> str:
        (af, an), (bf, bn) = self.a, self.b
        counts = f"A {af}/{an} failed, B {bf}/{bn} failed"
        if self.outcome == DIFFERENT:
            return (f"{counts}: {self.direction}, p = {self.p:.2g} (Fisher one-sided; "
                    f"family-wise alpha {self.level:.3g} this round)")
        base = f"{100 * af / an:.0f}%" if an else "0%"
        seen = (f"a rise from {base} to {100 * self.followup:.0f}% would have been followed up "
                f"with 80% probability" if self.followup is not None else
                "too few runs to have followed up any rise")
        return f"{counts}: {self.outcome}, p = {self.p:.2g}; with these runs {seen}"


def _rate(c: Count) -> float:
    return c[0] / c[1] if c[1] else 0.0


def judge(checks: Mapping[str, tuple[Count, Count]], design: Design = Design()) -> dict[str, CheckVerdict]:
    """One round's verdict of every check from its (failed, judged) counts
    on A and B (cumulative over the rounds so far)."""
    names = sorted(checks)
    ps: list[float] = []
    mins: list[float] = []
    for n in names:
        a, b = checks[n]
        floor = rates.min_p(a[1], b[1], a[0] + b[0])
        ps += [rates.p_worse(a, b), rates.p_better(a, b)]
        mins += [floor, floor]
    reject = rates.tarone_holm(ps, mins, design.level)
    out: dict[str, CheckVerdict] = {}
    for i, n in enumerate(names):
        a, b = checks[n]
        pw, pb = ps[2 * i], ps[2 * i + 1]
        direction = WORSE if pw <= pb else BETTER
        p = min(pw, pb)
        followup = rates.followup_rise(a, b[1], design.power) if b[1] else None
        if min(a[1], b[1]) < design.min_judged:
            outcome = UNKNOWN
        elif reject[2 * i] or reject[2 * i + 1]:
            outcome = DIFFERENT
            direction = WORSE if reject[2 * i] else BETTER
        elif p > LEAN and followup is not None and followup - _rate(a) <= design.min_effect + 1e-9:
            outcome = SAME
        else:
            outcome = UNKNOWN
        out[n] = CheckVerdict(n, a, b, outcome, direction if outcome != SAME else None, p,
                              design.level, followup, None)
    return out


def with_detectable(v: CheckVerdict, design: Design = Design()) -> CheckVerdict:
    """v with the rate of B this comparison alone would report at the
    round's level (for the report; a few ms a check, so not in judge)."""
    d = rates.detectable_rise(v.a, v.b[1], design.level, design.power) if v.b[1] else None
    return CheckVerdict(v.name, v.a, v.b, v.outcome, v.direction, v.p, v.level, v.followup, d)


def decided(verdicts: Mapping[str, CheckVerdict]) -> bool:
    """Whether more rounds can change the exit code: no check is UNKNOWN,
    or one is already DIFFERENT for the worse (exit 1 whatever the rest
    says; the UNKNOWN ones are reported as UNKNOWN with their counts)."""
    return any(v.worse for v in verdicts.values()) or not any(v.outcome == UNKNOWN for v in verdicts.values())


def exit_code(verdicts: Mapping[str, CheckVerdict]) -> int:
    """0 SAME or better, 1 a DIFFERENT for the worse, 3 UNKNOWN left."""
    if any(v.worse for v in verdicts.values()):
        return 1
    if any(v.outcome == UNKNOWN for v in verdicts.values()):
        return 3
    return 0
