"""Which patch brings each change: patchcheck-style, over the prefixes
base+1..k of the series, but bisected: the first prefix that shows a change
is found with about log2(n) prefixes, and every prefix built or run is kept
for the next change (the kernel cache keeps the builds for the next review).

`first_showing` is the pure search (unit-tested with an injected
predicate); `PrefixJudge` is the real predicate: it builds prefix k and runs
the scenario a change lives in until the change shows (once is enough) or
its absence is established by as many clean runs as B's failure rate asks
for (bisect_step.runs_for at 95 %, at most --repeats)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from harness.decide.ab_counts import FIXED, NEW
from harness.decide.bisect_step import failure_rate, runs_for
from harness.expect.checks import ERROR, FAIL, PASS
from harness.review.ab import NEW_TITLE, CheckDelta, Comparison, TitleDelta
from harness.review.kernels import Builder
from harness.run.repeats import SuiteRun
from harness.scenario.types import Scenario

CONFIDENCE = 0.95


def first_showing(n: int, shows: Callable[[int], bool | None]) -> tuple[int | None, list[int]]:
    """The smallest k in 1..n with shows(k), given that the base (k = 0)
    does not show it and the whole series (k = n) does; bisected. shows(k)
    may answer None (that prefix cannot be judged: it does not build, or
    its runs broke): the search then tests the next prefix up. Returns (k or
    None when the answer is ambiguous, the prefixes asked)."""
    lo, hi = 0, n
    asked: list[int] = []
    unknown: set[int] = set()
    while hi - lo > 1:
        mids = [m for m in range((lo + hi) // 2, hi) if m not in unknown]
        mids += [m for m in range((lo + hi) // 2 - 1, lo, -1) if m not in unknown]
        if not mids:
            return None, asked          # every prefix between lo and hi unjudgeable
        mid = mids[0]
        asked.append(mid)
        ans = shows(mid)
        if ans is None:
            unknown.add(mid)
        elif ans:
            hi = mid
        else:
            lo = mid
    return hi, asked


@dataclass
class Change:
    """One change to attribute: a check that newly fails or is fixed, or a
    new kernel report title."""
    key: str                          # check name, or "report: <title>"
    scenarios: tuple[str, ...]        # what to run to see it
    b_like: Callable[[SuiteRun], bool | None]   # this run shows B's behaviour; None: not evaluated
    need_clean: int                   # A-like runs that establish it is absent

    def judge(self, runs: Sequence[SuiteRun]) -> bool | None:
        """True once a run shows it; False after need_clean runs that do
        not; None: more runs needed."""
        answers = [self.b_like(r) for r in runs]
        if any(a is True for a in answers):
            return True
        if sum(a is False for a in answers) >= self.need_clean:
            return False
        return None


def change_of_check(c: CheckDelta, repeats: int) -> Change:
    def b_like(run: SuiteRun) -> bool | None:
        # Every judged run states the implicit checks too (repeats.implicit_passes),
        # so a crash or a hang has a count on the prefixes that passed.
        v = run.checks.get(c.name)
        if v is None or not run.judged_for(c.scenario):
            return None
        return v in (FAIL, ERROR) if c.cls == NEW else v == PASS
    shown, total = (c.b[1], sum(c.b)) if c.cls == NEW else (c.b[0], sum(c.b))
    need = min(runs_for(failure_rate(shown, total), CONFIDENCE), repeats)
    return Change(c.name, (c.scenario,), b_like, need)


def change_of_title(t: TitleDelta, repeats: int, b_runs: int) -> Change:
    def b_like(run: SuiteRun) -> bool | None:
        if run.infra or run.skipped:
            return None
        return t.title in run.titles
    need = min(runs_for(failure_rate(t.b, b_runs), CONFIDENCE), repeats)
    return Change(f"report: {t.title}", t.scenarios, b_like, need)


@dataclass
class PrefixJudge:
    """Builds prefixes and runs the scenarios of one change at a time on
    them; every build and run is kept for the other changes."""
    builder: Builder
    scenarios: Sequence[Scenario]
    initrd: Path
    out: Path
    run_once: Callable[..., SuiteRun]
    say: Callable[[str], None] = lambda _m: None
    on_boot: Callable | None = None
    max_runs: int = 10                  # per change and prefix, whatever happens
    runs: dict[tuple[int, str], list[SuiteRun]] = field(default_factory=dict)   # (k, scenario) -> runs
    built: list[int] = field(default_factory=list)                          # prefixes built (or cached)
    boots: int = 0

    def _kernel(self, k: int):
        res = self.builder.build(k)
        if k not in self.built:
            self.built.append(k)
            self.say(f"prefix 1..{k}: " + ("built" if res.kernel and not res.cached else
                                            "from the kernel cache" if res.kernel else
                                            f"does not build: {res.reason}"))
        return res.kernel

    def shows(self, change: Change, k: int) -> bool | None:
        kernel = self._kernel(k)
        if kernel is None:
            return None
        by_name = {s.name: s for s in self.scenarios}
        for _ in range(self.max_runs):
            runs = [r for s in change.scenarios for r in self.runs.get((k, s), [])]
            ans = change.judge(runs)
            if ans is not None:
                return ans
            # One more run of the change's scenarios on prefix k.
            for s in change.scenarios:
                have = self.runs.setdefault((k, s), [])
                run = self.run_once([by_name[s]], kernel, self.initrd, self.out, len(have) + 1,
                                    label=f"prefix-{k}", on_boot=self.on_boot)
                self.boots += 1
                have.append(run)
        return None


def attribute(cmp: Comparison, n: int, judge: PrefixJudge | None, repeats: int) -> list[int]:
    """Give each new failure, fix and new report title its patch. With one
    patch (or no judge) nothing needs building: it is patch n. Returns the
    prefixes asked, in order."""
    items: list[tuple[CheckDelta | TitleDelta, Change]] = []
    for c in cmp.of(NEW, FIXED):
        items.append((c, change_of_check(c, repeats)))
    for t in cmp.titles:
        if t.cls == NEW_TITLE:
            items.append((t, change_of_title(t, repeats, cmp.b_judged)))
    asked_all: list[int] = []
    for item, change in items:
        if n == 1 or judge is None:
            item.patch, item.attribution = n, "the series' only patch" if n == 1 else ""
            continue
        k, asked = first_showing(n, lambda k: judge.shows(change, k))
        asked_all += [a for a in asked if a not in asked_all]
        item.patch = k
        if k is None:
            item.attribution = "ambiguous: prefixes that could not be judged lie between the base and the series"
        else:
            item.attribution = (f"base+1..{k - 1} like the base, base+1..{k} like the series"
                                if k > 1 else "base+1 like the series")
    return asked_all
