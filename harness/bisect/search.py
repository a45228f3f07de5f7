"""The pure bisect search: git bisect over a history, given a judge that
gives each commit its verdict. It takes git's history (harness/kernel/gitbuild.py's
GitTree) or a fake one in the unit tests; the Bisector (bisector.py) is the
real judge."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Protocol

from harness.decide.bisect_step import INFRA_V, SKIP_V


class History(Protocol):
    def bisect_order(self, bad: str, goods: list[str]) -> list[str]: ...
    def range(self, bad: str, goods: list[str]) -> list[str]: ...


@dataclass
class SearchResult:
    candidates: list[str]           # the first new commit is one of these (1: found)
    old: list[str]                  # commits judged like the old endpoint
    new: str                        # the oldest commit judged like the new endpoint
    skipped: list[str]
    aborted: str = ""               # why the search stopped early


def search(history: History, old: str, new: str, judge: Callable[[str], str],
           is_new: Callable[[str], bool], steps_done: Callable[[], int] = lambda: 0,
           infra_count: Callable[[], int] = lambda: 0) -> SearchResult:
    """git bisect over history: judge(commit) -> GOOD/BAD/SKIP_V/INFRA_V;
    is_new(verdict) tells which verdicts are the new endpoint's. Skipped
    and infra commits are stepped around, like `git bisect skip`. Stops when
    infra verdicts exceed a third of all tested commits (steps_done())."""
    olds, cur_new, skipped = [old], new, []
    while True:
        order = [c for c in history.bisect_order(cur_new, olds) if c != cur_new and c not in skipped]
        if not order:
            break
        pick = order[0]
        verdict = judge(pick)
        if verdict in (SKIP_V, INFRA_V):
            skipped.append(pick)
            if verdict == INFRA_V and 3 * infra_count() > steps_done():
                return SearchResult(history.range(cur_new, olds), olds, cur_new, skipped,
                                    f"infrastructure failed in {infra_count()} of {steps_done()} "
                                    "tested commits (more than a third)")
        elif is_new(verdict):
            cur_new = pick
        else:
            olds.append(pick)
    return SearchResult(history.range(cur_new, olds), olds, cur_new, skipped)


def steps_left(candidates: int) -> int:
    """About how many more steps a search among candidates commits takes."""
    return math.ceil(math.log2(candidates)) if candidates > 1 else 0

