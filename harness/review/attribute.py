"""Which patch brings each change: patchcheck-style, over the prefixes
base+1..k of the series, decided by the same posterior as bisect
(harness/decide/posterior.py). Position 0 is the base, with A's runs;
position n the whole series, with B's; hypothesis k says patch k brings the
change, so prefixes before k behave like A and prefixes from k on like B.
While no patch holds 0.95, the prefix whose next run is expected to tell
most runs once more (`place`); the answer states P(patch). Every prefix
built or run is kept for the next change (and the kernel cache keeps the
builds for the next review).

`place` is pure (unit-tested with an injected run); `PrefixJudge` is the
real one: it builds prefix k and runs the scenarios a change lives in."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from harness.decide.ab_counts import FIXED, NEW
from harness.decide import posterior
from harness.expect.checks import ERROR, FAIL, PASS
from harness.review.ab import NEW_TITLE, CheckDelta, Comparison, TitleDelta
from harness.review.kernels import Builder
from harness.run.repeats import SuiteRun
from harness.scenario.types import Scenario

Count = tuple[int, int]          # (runs showing B's behaviour, judged runs)


TARGET = 0.95


def place(n: int, a: Count, b: Count, counts_at: Callable[[int], Count], run_more: Callable[[int], bool],
          budget: int, target: float = TARGET) -> tuple[int | None, float, list[int]]:
    """The patch (1..n) that brings a change, from (shown, judged) counts:
    A's at position 0, B's at n, counts_at(k) for prefix k. run_more(k)
    makes one more run of prefix k (False: prefix k cannot be judged, it does
    not build or its runs keep breaking). Stops when a patch holds target,
    when no run is expected to tell anything (posterior.MIN_GAIN), or after
    `budget` runs. Returns (the patch or None, its probability, the
    prefixes asked in order)."""
    dead: set[int] = set()
    asked: list[int] = []
    for _ in range(budget + 1):
        counts = [a] + [counts_at(k) for k in range(1, n)] + [b]
        s = posterior.Search(n + 1, target=target, first=1, counts=counts)
        best, p = s.best()
        pool = [k for k in range(1, n) if k not in dead]
        if p >= target or not pool or len(asked) >= budget:
            break
        k, gain = s.next_and_gain(pool)
        if gain < posterior.MIN_GAIN:
            break
        if k not in asked:
            asked.append(k)
        if not run_more(k):
            dead.add(k)
    return (best if p >= target else None), p, asked


@dataclass
class Change:
    """One change to attribute: a check that newly fails or is fixed, or a
    new kernel report title."""
    key: str                          # check name, or "report: <title>"
    scenarios: tuple[str, ...]        # what to run to see it
    b_like: Callable[[SuiteRun], bool | None]   # this run shows B's behaviour; None: not evaluated
    a: Count                          # (runs showing B's behaviour, judged runs) on A
    b: Count                          # the same on B

    def count(self, runs: Sequence[SuiteRun]) -> Count:
        answers = [self.b_like(r) for r in runs]
        return sum(x is True for x in answers), sum(x is not None for x in answers)


def change_of_check(c: CheckDelta) -> Change:
    def b_like(run: SuiteRun) -> bool | None:
        # Every judged run states the implicit checks too (repeats.implicit_passes),
        # so a crash or a hang has a count on the prefixes that passed.
        v = run.checks.get(c.name)
        if v is None or not run.judged_for(c.scenario):
            return None
        return v in (FAIL, ERROR) if c.cls == NEW else v == PASS
    # c.a, c.b: (passed, failed); B's behaviour is failing for a new failure, passing for a fix.
    shown = 1 if c.cls == NEW else 0
    return Change(c.name, (c.scenario,), b_like, (c.a[shown], sum(c.a)), (c.b[shown], sum(c.b)))


def change_of_title(t: TitleDelta, a_runs: int, b_runs: int) -> Change:
    def b_like(run: SuiteRun) -> bool | None:
        if run.infra or run.skipped:
            return None
        return t.title in run.titles
    return Change(f"report: {t.title}", t.scenarios, b_like, (t.a, a_runs), (t.b, b_runs))


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
    silent_runs: int = 2                # runs of a prefix that said nothing before it is stepped around
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

    def counts_at(self, change: Change, k: int) -> Count:
        """What every run of prefix k so far (made for any change) says of this one."""
        return change.count([r for s in change.scenarios for r in self.runs.get((k, s), [])])

    def run_more(self, change: Change, k: int) -> bool:
        """One more run of the change's scenarios on prefix k; False when
        prefix k cannot be judged (it does not build, or silent_runs of its
        runs said nothing about the change)."""
        kernel = self._kernel(k)
        if kernel is None:
            return False
        runs = [r for s in change.scenarios for r in self.runs.get((k, s), [])]
        if sum(change.b_like(r) is None for r in runs) >= self.silent_runs:
            return False
        by_name = {s.name: s for s in self.scenarios}
        for s in change.scenarios:
            have = self.runs.setdefault((k, s), [])
            run = self.run_once([by_name[s]], kernel, self.initrd, self.out, len(have) + 1,
                                label=f"prefix-{k}", on_boot=self.on_boot)
            self.boots += 1
            have.append(run)
        return True


def attribute(cmp: Comparison, n: int, judge: PrefixJudge | None, repeats: int) -> list[int]:
    """Give each new failure, fix and new report title its patch and
    P(patch). With one patch (or no judge) nothing needs building: it is
    patch n. The budget is `repeats` runs per prefix. Returns the prefixes
    asked, in order."""
    items: list[tuple[CheckDelta | TitleDelta, Change]] = []
    for c in cmp.of(NEW, FIXED):
        items.append((c, change_of_check(c)))
    for t in cmp.titles:
        if t.cls == NEW_TITLE:
            items.append((t, change_of_title(t, cmp.a_judged, cmp.b_judged)))
    asked_all: list[int] = []
    for item, change in items:
        if n == 1 or judge is None:
            item.patch, item.attribution = n, "the series' only patch" if n == 1 else ""
            continue
        k, p, asked = place(n, change.a, change.b, lambda k: judge.counts_at(change, k),
                            lambda k: judge.run_more(change, k), budget=repeats * (n - 1))
        asked_all += [a for a in asked if a not in asked_all]
        item.patch = k
        counts = ", ".join(f"base+1..{j} {judge.counts_at(change, j)[0]}/{judge.counts_at(change, j)[1]}"
                           for j in range(1, n) if judge.counts_at(change, j)[1])
        if k is None:
            item.attribution = (f"undecided: no patch reached P = {TARGET:g} (best {p:.2f}); prefixes like "
                                f"the series in {counts or 'no run'}")
        else:
            item.attribution = (f"patch {k} with P = {p:.3f} (prefixes showing it: {counts})" if counts else
                                f"patch {k} with P = {p:.3f}")
    return asked_all
