"""Where in the console log a failed check shows: the lines the JUnit
failure quotes and the HTML report highlights.

In order: the line holding the first line of what was observed (a crash
title, a report, a console pattern's match); else the console span of the
step the check names (observations.json records each step's span); else
the last lines before the log ended (a hang)."""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

SPAN_LINES = 40       # at most this many lines of a step's span are marked
TAIL_LINES = 12
CONTEXT = 3           # lines quoted before and after the marked ones
MIN_NEEDLE = 12       # shorter observed texts match too much to locate anything


@dataclass(frozen=True)
class Excerpt:
    first: int        # 0-based line numbers, inclusive
    last: int
    how: str          # "observed", "step", "tail"

    def quote(self, lines: list[str], context: int = CONTEXT, limit: int = 30) -> tuple[int, list[str]]:
        """(first line number quoted, the lines), at most limit lines."""
        end = len(lines)
        while end > self.last + 1 and not lines[end - 1].strip():
            end -= 1
        lo = max(0, self.first - context)
        hi = min(end, self.last + 1 + context)
        if hi - lo > limit:
            lo = max(lo, hi - limit)
        return lo, lines[lo:hi]


def _line_starts(text: str) -> list[int]:
    starts = [0]
    for i, ch in enumerate(text):
        if ch == "\n":
            starts.append(i + 1)
    return starts


def locate(console: str, check: dict[str, Any], observations: dict[str, Any]) -> Excerpt | None:
    if not console:
        return None
    lines = console.split("\n")
    observed = (check.get("observed") or "").strip().splitlines()
    needle = observed[0].strip() if observed else ""
    if len(needle) >= MIN_NEEDLE:
        for i, line in enumerate(lines):
            if needle in line:
                return Excerpt(i, i, "observed")
    step = check.get("step")
    span = ((observations.get("steps") or {}).get(step) or {}).get("console_span") if step else None
    if span and span[1] > span[0]:
        starts = _line_starts(console)
        first = bisect_right(starts, span[0]) - 1
        last = max(first, bisect_right(starts, max(span[0], span[1] - 1)) - 1)
        return Excerpt(max(first, last - SPAN_LINES + 1), last, "step")
    last = len(lines) - 1
    while last > 0 and not lines[last].strip():
        last -= 1
    return Excerpt(max(0, last - TAIL_LINES + 1), last, "tail")
