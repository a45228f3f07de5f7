"""A check's class in a review, from its decision (harness/decide/compare.py)
and its counts on each side: what review.md, JUnit, the mail and patchwork
group it under. The decision alone says SAME, DIFFERENT or UNKNOWN; the
class adds the direction and, for SAME, whether the check fails at all.

Before the decision core a check mixed on the base was "flaky" whatever the
series did, and one failure in three runs with the series was a "new
failure" (bench/decide keeps that rule as "today" for comparison)."""
from __future__ import annotations

from harness.decide.compare import DIFFERENT, SAME, CheckVerdict

NEW, FIXED, STILL, FLAKY, UNCHANGED = "new failure", "fixed", "still failing", "flaky", "unchanged"
UNDECIDED = "undecided"
LEANS_BETTER = "leans better"     # UNKNOWN, but a rise is ruled out: "SAME or better", exit 0
CLASSES = (NEW, FIXED, UNDECIDED, LEANS_BETTER, STILL, FLAKY, UNCHANGED)


def classify(v: CheckVerdict) -> str:
    """NEW and FIXED are DIFFERENT (worse, better); UNDECIDED is UNKNOWN
    (LEANS_BETTER when only a lean better keeps it from SAME);
    SAME is STILL (fails in every run on both sides), FLAKY (fails in some
    runs, at a rate the test could not tell apart) or UNCHANGED (never
    fails)."""
    if v.outcome == DIFFERENT:
        return NEW if v.worse else FIXED
    if v.outcome != SAME:
        return LEANS_BETTER if v.worse_ruled_out else UNDECIDED
    (af, an), (bf, bn) = v.a, v.b
    if af + bf == 0:
        return UNCHANGED
    if af == an and bf == bn:
        return STILL
    return FLAKY
