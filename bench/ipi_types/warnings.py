"""Kernel warning/report lines in the console logs of a run, per scenario:
every kernel line matching WARN (below), with its count, the timestamp and
caller prefix removed and numbers folded to N. Used for docs/ipi-types.md.

    python bench/ipi_types/warnings.py OUT
"""
from __future__ import annotations

import collections
import re
import sys
from pathlib import Path

KLINE = re.compile(r"\[\s*\d+\.\d+\](?:\[\s*[TC]\d+\])? (.*)$")
# Report-like lines (case-sensitive). Ordinary boot lines and the backtrace
# rounds the scenarios ask for are left out by the caller's --all switch.
WARN = re.compile(
    r"WARNING|BUG[: ]|Oops|Unable to handle|Kernel panic|INFO: task|blocked for more than|"
    r"rcu: INFO|detected stall|self-detected stall|rcu: .*kthread starved|watchdog: |LOCKUP|"
    r"soft lockup|csd: |KGDB: Timed out|failed to|unhandled|no longer affine|SMP: |"
    r"Catastrophic|sched: RT throttling|hrtimer: interrupt took|NOHZ tick-stop error|"
    r"clocksource: .*unstable|workqueue: .*hogged|cut here|Tainted: [A-Z]|timekeeping watchdog")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: warnings.py OUT", file=sys.stderr)
        return 2
    logs = sorted(Path(argv[0]).glob("*/*/console.log"))
    if not logs:
        print(f"{argv[0]}: no console.log", file=sys.stderr)
        return 2
    for log in logs:
        seen: collections.Counter[str] = collections.Counter()
        for raw in log.read_text(errors="replace").replace("\r", "").splitlines():
            m = KLINE.search(raw)
            if not m:
                continue
            text = m.group(1)
            if WARN.search(text):
                seen[re.sub(r"\b\d+\b", "N", re.sub(r"0x[0-9a-f]+|[0-9a-f]{16}", "X", text))[:110]] += 1
        print(f"== {log.parent.name}: {sum(seen.values())} lines")
        for text, n in seen.most_common():
            print(f"  {n:4d}  {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
