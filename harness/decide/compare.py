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
  have been followed up with 80% probability". A check that would be SAME
  but for a lean better is UNKNOWN with worse_ruled_out: its scenario runs
  again, and it does not hold the exit code at 3 ("SAME or better").
- UNKNOWN: anything else: too few runs, or a lean that is not yet
  significant. Its scenario runs again next round; at the end of the
  budget UNKNOWN stays UNKNOWN (exit 3), never "unchanged".

A side with fewer than `min_judged` judged runs of a scenario gives UNKNOWN
for every check of it, whatever the counts. bench/decide measures the
false-positive rate and power of exactly this code on synthetic A/B pairs."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

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
    # Runs a side: `first` of every scenario, then `step` more of each
    # scenario still UNKNOWN, up to `max_runs`: looks at 1, 5 and 9 runs. A
    # deterministic break is DIFFERENT at 5 runs a side (p = 1/252 against a
    # level of 0.05/3), an untouched scenario SAME at 5 (a rise from 0% to
    # 28% would have been followed up), so one cheap first round finds the
    # scenarios worth more boots.
    first: int = 1
    step: int = 4
    max_runs: int = 9            # per side and scenario
    min_judged: int = 2          # judged runs a side needs before anything but UNKNOWN
    # Leaning scenarios run again at most this many at a time, the most
    # lopsided first. A series that removes an IPI row leans in every
    # scenario (the model's row claims); one of them reaching DIFFERENT ends
    # the review, so running all 24 again first (192 boots) is waste.
    focus: int = 2

    @property
    def max_rounds(self) -> int:
        """The looks any one check can get: the first round and each step."""
        return 1 + max(0, -(-(self.max_runs - self.first) // self.step))

    @property
    def level(self) -> float:
        """The family-wise level of one round (Bonferroni over the looks)."""
        return self.alpha / self.max_rounds

    def runs_after(self, looks: int) -> int:
        return min(self.max_runs, self.first + self.step * (looks - 1))


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
    # UNKNOWN only because it leans better: a rise is ruled out as for SAME,
    # so it does not hold the exit code at 3 (more rounds may show DIFFERENT, better).
    worse_ruled_out: bool = False

    @property
    def worse(self) -> bool:
        return self.outcome == DIFFERENT and self.direction == WORSE

    def text(self) -> str:
        (af, an), (bf, bn) = self.a, self.b
        counts = f"A {af}/{an} failed, B {bf}/{bn} failed"
        if self.outcome == DIFFERENT:
            return (f"{counts}: DIFFERENT ({self.direction}), p = {self.p:.2g} (Fisher one-sided, "
                    f"Holm at {self.level:.3g} a look)")
        base = f"{100 * af / an:.0f}%" if an else "0%"
        if self.detectable is not None:
            seen = (f"with {an} and {bn} runs a rise from {base} to {100 * self.detectable:.0f}% would have "
                    f"been seen with 80% probability" if self.detectable <= 1 else
                    f"with {an} and {bn} runs no rise from {base} would have been seen with 80% probability")
        elif self.followup is not None:
            seen = (f"a rise from {base} to {100 * self.followup:.0f}% would have been followed up "
                    f"with 80% probability")
        else:
            seen = "too few runs to have followed up any rise"
        lean = " (leans better, no rise: SAME or better)" if self.worse_ruled_out else ""
        return f"{counts}: {self.outcome}{lean}, p = {self.p:.2g}; {seen}"


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
        else:
            # No lean worse, and a rise would have been followed up (or A
            # fails every run: no rise is possible).
            no_rise = pw > LEAN and (_rate(a) >= 1.0 or (followup is not None
                                                         and followup - _rate(a) <= design.min_effect + 1e-9))
            # SAME needs no lean better either; a lean better stays UNKNOWN,
            # so that rounds go on and a fix shows as DIFFERENT, but is "SAME
            # or better" for the exit code (A 1/9 failed, B 0/9: a bring-up
            # miss on the base does not make the review exit 3).
            outcome = SAME if no_rise and pb > LEAN else UNKNOWN
            ruled_out = no_rise and outcome == UNKNOWN
            lean = BETTER if ruled_out else direction if outcome != SAME else None
            out[n] = CheckVerdict(n, a, b, outcome, lean, p, design.level, followup, None, ruled_out)
            continue
        out[n] = CheckVerdict(n, a, b, outcome, direction, p, design.level, followup, None)
    return out


def with_detectable(v: CheckVerdict, design: Design = Design()) -> CheckVerdict:
    """v with the rate of B this comparison alone would report at the
    round's level (for the report; a few ms a check, so not in judge)."""
    d = rates.detectable_rise(v.a, v.b[1], design.level, design.power) if v.b[1] else None
    return dataclasses.replace(v, detectable=d)


def decided(verdicts: Mapping[str, CheckVerdict]) -> bool:
    """Whether more rounds can change the exit code: no check is UNKNOWN,
    or one is already DIFFERENT for the worse (exit 1 whatever the rest
    says; the UNKNOWN ones are reported as UNKNOWN with their counts)."""
    return any(v.worse for v in verdicts.values()) or not any(v.outcome == UNKNOWN for v in verdicts.values())


def next_round(verdicts: Mapping[str, CheckVerdict], runs: Mapping[str, int],
               scenarios_of: Callable[[str], Sequence[str]], design: Design = Design(),
               cost: Mapping[str, float] | None = None) -> list[str]:
    """The scenarios the next round runs `design.step` more times a side: those
    with an UNKNOWN check and runs left in the budget (runs: scenario -> runs
    a side so far). If some of them lean worse (B fails more, one-sided p <=
    LEAN), only those, at most design.focus of them, the smallest p (then the
    cheapest by `cost`, seconds a run, then the name) first: a lean is what can end the
    review with exit 1 early, and the others wait for the rounds after. A
    scenario gets at most max_rounds looks either way, which is what the
    level assumes."""
    open_: set[str] = set()
    leaning: dict[str, float] = {}
    for v in verdicts.values():
        if v.outcome != UNKNOWN:
            continue
        left = {s for s in scenarios_of(v.name) if runs.get(s, 0) < design.max_runs}
        open_ |= left
        if v.direction == WORSE and v.p <= LEAN and v.b[0] * v.a[1] > v.a[0] * v.b[1]:
            for s in left:
                leaning[s] = min(leaning.get(s, 1.0), v.p)
    if leaning:
        price = cost or {}
        return sorted(sorted(leaning, key=lambda s: (leaning[s], price.get(s, 0.0), s))[:design.focus])
    return sorted(open_)


def exit_code(verdicts: Mapping[str, CheckVerdict]) -> int:
    """0 SAME or better, 1 a DIFFERENT for the worse, 3 UNKNOWN left."""
    if any(v.worse for v in verdicts.values()):
        return 1
    if any(v.outcome == UNKNOWN and not v.worse_ruled_out for v in verdicts.values()):
        return 3
    return 0
