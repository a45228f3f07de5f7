"""Expected values of claims, and how an observed value is judged against one.

A claim's expected value is plain JSON. A bare value (int, str, bool, null,
list) must be matched exactly. A one-key dict states something weaker:

    {"at_least": n}       numeric, >= n
    {"at_most": n}        numeric, <= n
    {"between": [lo, hi]} numeric, lo <= x <= hi
    {"one_of": [v, ...]}  any of the listed expected values (which may
                          themselves be one-key dicts)
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable


@dataclass(frozen=True)
class Range:
    """An integer interval for a counter delta; hi None means unbounded."""
    lo: int = 0
    hi: int | None = None

    @staticmethod
    def exact(n: int) -> "Range":
        return Range(n, n)

    @property
    def is_exact(self) -> bool:
        return self.hi is not None and self.lo == self.hi

    @property
    def vacuous(self) -> bool:
        """True when the range says nothing about a counter (0 or more)."""
        return self.lo <= 0 and self.hi is None

    def __add__(self, other: "Range") -> "Range":
        hi = None if self.hi is None or other.hi is None else self.hi + other.hi
        return Range(self.lo + other.lo, hi)

    def union(self, other: "Range") -> "Range":
        """Smallest range holding both (for merging alternatives)."""
        hi = None if self.hi is None or other.hi is None else max(self.hi, other.hi)
        return Range(min(self.lo, other.lo), hi)

    def contains(self, n: int) -> bool:
        return n >= self.lo and (self.hi is None or n <= self.hi)

    def expected(self) -> Any:
        if self.is_exact:
            return self.lo
        if self.hi is None:
            return {"at_least": self.lo}
        return {"between": [self.lo, self.hi]}

    def __str__(self) -> str:
        if self.is_exact:
            return f"+{self.lo}"
        if self.hi is None:
            return f">=+{self.lo}"
        return f"+{self.lo}..{self.hi}"


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def one_of(values: Iterable[Any]) -> Any:
    """Expected value for 'any of these' (a bare value when only one)."""
    seen: dict[str, Any] = {}
    for v in values:
        if isinstance(v, dict) and set(v) == {"one_of"}:
            for inner in v["one_of"]:
                seen.setdefault(_key(inner), inner)
        else:
            seen.setdefault(_key(v), v)
    items = [seen[k] for k in sorted(seen)]
    if len(items) == 1:
        return items[0]
    return {"one_of": items}


def satisfies(expected: Any, actual: Any) -> bool:
    """Whether an observed value meets an expected value."""
    if isinstance(expected, dict) and len(expected) == 1:
        (op, arg), = expected.items()
        number = isinstance(actual, (int, float)) and not isinstance(actual, bool)
        if op == "one_of":
            return any(satisfies(e, actual) for e in arg)
        if op == "at_least":
            return number and actual >= arg
        if op == "at_most":
            return number and actual <= arg
        if op == "between":
            return number and arg[0] <= actual <= arg[1]
    if isinstance(expected, (list, tuple)) and isinstance(actual, (list, tuple)):
        return list(expected) == list(actual)
    return expected == actual
