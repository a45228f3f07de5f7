"""Where in the console log a failed check shows: the lines the JUnit
failure quotes and the HTML report highlights.

In order: the line holding the first line of what was observed (a crash
title, a report, a console pattern's match); else the console span of the
step the check names (observations.json records each step's span), for a
latency check the slowest step, for a counter check the row's line in the
second snapshot; else the last lines before the log ended (a hang)."""
from __future__ import annotations

import re
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


_MAX_MS = re.compile(r"\bmax (\d+)\)")


def _slowest_step(check: dict[str, Any], observations: dict[str, Any]) -> str | None:
    """A latency check names no step; its observed text ends with the
    slowest value ('... max 4980)'), which is one step's latency_ms."""
    m = _MAX_MS.search(check.get("observed") or "")
    if m is None:
        return None
    worst = int(m.group(1))
    return next((name for name, s in (observations.get("steps") or {}).items()
                 if s.get("latency_ms") == worst), None)


_COUNTER = re.compile(r"^'(?P<row>.+)' (?P<before>\S+)->(?P<after>\S+):")


def _snapshot_step(check: dict[str, Any], observations: dict[str, Any]) -> tuple[str, str] | None:
    """A counter check names no step; its expected text names the row and the
    snapshots ("'CPU backtrace interrupts' before->after: ..."): the step
    that took the second one, and the row to look for in it."""
    m = _COUNTER.match(check.get("expected") or "")
    if m is None:
        return None
    name = next((n for n, s in (observations.get("steps") or {}).items()
                 if s.get("kind") == "snapshot" and s.get("label") == m.group("after")), None)
    return (name, m.group("row")) if name else None


def locate(console: str, check: dict[str, Any], observations: dict[str, Any],
           raw: str | None = None) -> Excerpt | None:
    """console: the log without \r; raw: the log as written (the offsets of
    observations.json's console spans count its \r characters too)."""
    if not console:
        return None
    lines = console.split("\n")
    observed = (check.get("observed") or "").strip().splitlines()
    needle = observed[0].strip() if observed else ""
    if len(needle) >= MIN_NEEDLE:
        for i, line in enumerate(lines):
            if needle in line:
                return Excerpt(i, i, "observed")
    row = None
    step = check.get("step") or _slowest_step(check, observations)
    if step is None and (found := _snapshot_step(check, observations)):
        step, row = found
    span = ((observations.get("steps") or {}).get(step) or {}).get("console_span") if step else None
    if span and span[1] > span[0]:
        text = raw if raw is not None else console
        # Lines are counted by "\n", which removing "\r" leaves in place.
        first = text.count("\n", 0, span[0])
        # The span ends with the shell's next prompt, on a line of its own
        # that the next command's echo continues: the step ends the line before.
        last = max(first, text.count("\n", 0, span[1]) - 1)
        if row is not None:
            hit = next((i for i in range(first, min(last + 1, len(lines))) if row in lines[i]), None)
            if hit is not None:
                return Excerpt(hit, hit, "row")
        return Excerpt(max(first, last - SPAN_LINES + 1), last, "step")
    last = len(lines) - 1
    while last > 0 and not lines[last].strip():
        last -= 1
    return Excerpt(max(0, last - TAIL_LINES + 1), last, "tail")
