"""The kernel's cpulist syntax: "0,2-3" (bitmap_print_to_pagebuf / %*pbl)."""
from __future__ import annotations

import re

_ITEM = re.compile(r"^\s*(\d+)(?:\s*-\s*(\d+))?\s*$")


def parse(text: str) -> list[int] | None:
    """CPUs in a cpulist, or None when it is not one."""
    cpus: list[int] = []
    if not text.strip():
        return []
    for item in text.split(","):
        m = _ITEM.match(item)
        if not m:
            return None
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) else lo
        if hi < lo or hi - lo > 4096:
            return None
        cpus.extend(range(lo, hi + 1))
    return cpus


def format(cpus: list[int]) -> str:
    """The inverse: [0, 2, 3] -> "0,2-3"."""
    out: list[str] = []
    ordered = sorted(set(cpus))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(out)
