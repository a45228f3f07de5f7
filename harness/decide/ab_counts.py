"""A check's change between two kernels from its (passed, failed) counts on
each: its class (new failure, fixed, still failing, flaky, unchanged) and
Fisher's one-sided p-value under "no change". review/ab.py compares a
base with base + series through these."""
from __future__ import annotations

NEW, FIXED, STILL, FLAKY, UNCHANGED = "new failure", "fixed", "still failing", "flaky", "unchanged"


def classify(a: tuple[int, int], b: tuple[int, int]) -> str:
    """Class of one check from its (passed, failed) counts on A and on B.
    A mixed on A is flaky whatever B did: the base alone does not decide it."""
    (ap, af), (bp, bf) = a, b
    if ap and af:
        return FLAKY
    if af and not ap:          # A always fails
        return FIXED if bp else STILL
    if not af and bf:          # A never fails (or never ran the check)
        return NEW
    return UNCHANGED


def fisher_p(a: tuple[int, int], b: tuple[int, int], cls: str) -> float | None:
    """One-sided p-value under 'no change': the chance that runs of one and
    the same kernel split at least this lopsidedly between A and B."""
    from scipy.stats import fisher_exact  # heavy: scipy loads in about 0.5 s, only review needs it
    (ap, af), (bp, bf) = a, b
    if cls == NEW:
        alternative = "greater"       # B fails more: odds (ap*bf)/(af*bp) > 1
    elif cls == FIXED:
        alternative = "less"
    else:
        return None
    if ap + af == 0 or bp + bf == 0:
        return None
    return float(fisher_exact([[ap, af], [bp, bf]], alternative=alternative).pvalue)


def significance_text(a: tuple[int, int], b: tuple[int, int], cls: str, p: float | None) -> str:
    (ap, af), (bp, bf) = a, b
    if p is None:
        return ""
    what = "failed" if cls == NEW else "passed"
    bn, an = (bf, af) if cls == NEW else (bp, ap)
    odds = f"1 in {1 / p:.0f}" if p > 0 else "0"
    # 1/20 from 3 of 3 against 0 of 3 comes out as 0.05000000000000001.
    strength = ("significant at 5%" if p <= 0.05 + 1e-12 else
                "not significant at 5%: more repeats would tell")
    return (f"{what} in {bn}/{bp + bf} runs with the series and {an}/{ap + af} on the base; were the "
            f"series to change nothing, a split at least this lopsided would come with probability "
            f"{p:.3g} ({odds}; Fisher's exact test, one-sided), {strength}")
