"""Judging one bisect step from its runs (syzkaller pkg/bisect style, pure
functions of counts): the failure signature of a set of runs, the class of
one run against a signature, a commit's verdict from its runs' classes, the
failure-rate estimate and the number of clean runs a confidence needs.
bisect/ and review/ call them; their unit tests feed them counts."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

from harness.expect.checks import FAIL
from harness.run.repeats import SuiteRun

# Classes of one run against a signature.
CLEAN, SIGNATURE, UNRELATED, INFRA, SKIPPED = "clean", "signature", "unrelated", "infra", "skipped"
# Verdicts of a tested commit.
GOOD, BAD, SKIP_V, INFRA_V = "good", "bad", "skip", "infra"
# Infra runs allowed per commit: the first is retried once, the second ends it.
INFRA_RETRIES = 1


# ------------------------------------------------------------ signatures

@dataclass(frozen=True)
class Signature:
    """What a failure looks like: the failed checks and the kernel report
    titles. `narrowed`: given by hand (--checks); then only those checks
    count, and other failures are ignored."""
    checks: frozenset[str]
    titles: frozenset[str] = frozenset()
    narrowed: bool = False

    @classmethod
    def of_run(cls, run: SuiteRun) -> "Signature":
        return cls(frozenset(run.failed), frozenset(run.titles))

    @classmethod
    def of_runs(cls, runs: Iterable[SuiteRun], only: Sequence[str] = ()) -> "Signature":
        """The union over the failing runs; `only` narrows it to checks
        whose name is, or ends with ': ', one of the given names."""
        failing = [r for r in runs if r.failed and not r.infra and not r.skipped]
        checks = {c for r in failing for c in r.failed}
        titles = {t for r in failing for t in r.titles}
        if only:
            picked = {c for c in checks if any(c == n or c.endswith(": " + n) for n in only)}
            return cls(frozenset(picked), frozenset(titles), True)
        return cls(frozenset(checks), frozenset(titles))

    def describe(self) -> list[str]:
        return sorted(self.checks) + [f"report: {t}" for t in sorted(self.titles)]

    def to_json(self) -> dict:
        return {"checks": sorted(self.checks), "titles": sorted(self.titles), "narrowed": self.narrowed}

    @classmethod
    def from_json(cls, d: dict) -> "Signature":
        return cls(frozenset(d["checks"]), frozenset(d["titles"]), d["narrowed"])


def classify(run: SuiteRun, sig: Signature) -> tuple[str, str]:
    """(class, why) of one run against the signature."""
    if run.infra:
        return INFRA, run.infra
    if run.skipped:
        return SKIPPED, run.skipped
    failed = set(run.failed)
    # Checks that ran and failed; ERROR ones were not evaluated (after a
    # crash or a hang), so they cannot show the signature by themselves.
    hard = {n for n, v in run.checks.items() if v == FAIL}
    new_titles = sorted(set(run.titles) - sig.titles)
    if sig.narrowed:
        failed &= sig.checks
    if not failed and not new_titles:
        return CLEAN, ""
    extra = sorted(failed - sig.checks)
    if new_titles:       # a different crash or warning: whatever else failed, it says nothing
        return UNRELATED, "unrelated failure: " + "; ".join([f"report: {t}" for t in new_titles] + extra)
    shown = sorted(hard & sig.checks)
    if not shown:
        return UNRELATED, "unrelated failure: " + "; ".join(extra or sorted(failed))
    # The signature failed here; other checks failing beside it (a flaky
    # model claim, say) do not hide it.
    return SIGNATURE, "; ".join(shown) + (f" (also failed: {'; '.join(extra)})" if extra else "")


# ------------------------------------------------------------ verdicts

def failure_rate(signature_runs: int, runs: int) -> float:
    """The chance that one run of a bad kernel shows the failure, estimated
    from the bad endpoint's runs by Laplace's rule of succession,
    (x + 1) / (n + 2): 3 failures in 3 runs give 0.8, not a certainty that
    three runs cannot establish."""
    return (signature_runs + 1) / (runs + 2)


def runs_for(p: float, confidence: float) -> int:
    """Clean runs k after which "good" misses a real failure with chance
    (1 - p)^k < 1 - confidence."""
    if p >= 1.0:
        return 1
    if p <= 0.0:
        raise ValueError("a failure rate of 0 needs infinitely many runs")
    return max(1, math.floor(math.log(1.0 - confidence) / math.log(1.0 - p)) + 1)


def confidence_of(clean_runs: int, p: float) -> float:
    """Confidence that a kernel with clean_runs clean runs is really good."""
    return 1.0 - (1.0 - p) ** clean_runs


@dataclass
class Decision:
    verdict: str | None      # None: run once more
    reason: str
    clean: int = 0
    signature: int = 0
    unrelated: int = 0
    infra: int = 0


def decide(classes: Sequence[tuple[str, str]], need_clean: int, max_runs: int,
           stop_on_signature: bool = True) -> Decision:
    """A commit's verdict from its runs' classes, in order.

    bad on the signature (at once, unless stop_on_signature is False, for
    verification runs that must reach N); skip when a run fails otherwise
    or a scenario cannot run; infra when a run broke outside the kernel and
    its one retry broke too; good after need_clean clean runs; skip when
    max_runs judged runs did not get there."""
    d = Decision(None, "")
    why_unrelated = why_infra = why_skipped = ""
    for cls, why in classes:
        if cls == CLEAN:
            d.clean += 1
        elif cls == SIGNATURE:
            d.signature += 1
        elif cls == UNRELATED:
            d.unrelated += 1
            why_unrelated = why_unrelated or why
        elif cls == INFRA:
            d.infra += 1
            why_infra = why
        elif cls == SKIPPED:
            why_skipped = why_skipped or why
    judged = d.clean + d.signature + d.unrelated
    if d.signature and (stop_on_signature or judged >= need_clean):
        d.verdict, d.reason = BAD, f"signature failed in {d.signature}/{judged} runs"
    elif d.unrelated:
        d.verdict, d.reason = SKIP_V, why_unrelated
    elif why_skipped:
        d.verdict, d.reason = SKIP_V, f"scenario skipped: {why_skipped}"
    elif d.infra > INFRA_RETRIES:
        d.verdict, d.reason = INFRA_V, f"infrastructure failed {d.infra} times: {why_infra}"
    elif d.clean >= need_clean:
        d.verdict, d.reason = GOOD, f"{d.clean}/{judged} runs clean"
    elif judged >= max_runs:
        d.verdict, d.reason = SKIP_V, f"only {d.clean} clean runs of {need_clean} needed within {max_runs}"
    return d
