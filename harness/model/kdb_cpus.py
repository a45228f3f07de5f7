"""kdb's "Available cpus:" line, ported from kernel/debug/kdb/kdb_main.c
kdb_cpu_status() (Linux 6.12), plus a parser for it.

Per CPU i in 0..NR_CPUS-1 the kernel picks a state character:
  'F'  !cpu_online(i)                           (offline or not present)
  'D'  online but !kgdb_info[i].enter_kgdb      (did not answer the round-up)
  '-'  kdb_task_state_char(KDB_TSK(i)) == '-'   (its idle task, interrupted
       from idle, and i is not kdb_initial_cpu: kdb_support.c)
  ' '  otherwise                                 (responding, running a task,
       or the CPU kdb was entered on)
Consecutive CPUs with the same character form one group, printed as "a" or
"a-b" followed by "(c)" unless c is ' '; groups are joined by ", ". A
trailing group of 'F' is not printed; an 'F' group in the middle is
("2(F)").
"""
from __future__ import annotations

import re
from typing import Sequence

OFFLINE = "F"
UNRESPONSIVE = "D"
IDLE = "-"
RUNNING = " "
STATES = (OFFLINE, UNRESPONSIVE, IDLE, RUNNING)


def available_cpus(states: Sequence[str], nr_cpus: int | None = None) -> str:
    """The text after "Available cpus: " for per-CPU state characters
    (index = CPU number). CPUs beyond len(states) up to nr_cpus are 'F'."""
    chars = list(states)
    if nr_cpus is not None and nr_cpus > len(chars):
        chars += [OFFLINE] * (nr_cpus - len(chars))
    for c in chars:
        if c not in STATES:
            raise ValueError(f"bad kdb cpu state {c!r}")
    out: list[str] = []
    prev = "?"
    start = -1
    n = len(chars)
    for i in range(n):
        state = chars[i]
        if state != prev:
            if prev != "?":
                text = str(start)
                if start < i - 1:
                    text += f"-{i - 1}"
                if prev != RUNNING:
                    text += f"({prev})"
                out.append(text)
            prev = state
            start = i
    # print the trailing cpus, ignoring them if they are all offline
    if prev != OFFLINE and prev != "?":
        text = str(start)
        if start < n - 1:
            text += f"-{n - 1}"
        if prev != RUNNING:
            text += f"({prev})"
        out.append(text)
    return ", ".join(out)


def cpu_status(current: int, states: Sequence[str], nr_cpus: int | None = None) -> list[str]:
    """The two lines of kdb's "cpu" command."""
    return [f"Currently on cpu {current}", f"Available cpus: {available_cpus(states, nr_cpus)}"]


_GROUP = re.compile(r"^(\d+)(?:-(\d+))?(?:\(([FD-])\))?$")


def parse_available(text: str) -> dict[int, str] | None:
    """CPU number -> state character for an "Available cpus" string, or None
    when it is not one. CPUs not mentioned are absent from the result."""
    out: dict[int, str] = {}
    text = text.strip()
    if not text:
        return out
    for group in text.split(", "):
        m = _GROUP.match(group)
        if not m:
            return None
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) else lo
        if hi < lo:
            return None
        for cpu in range(lo, hi + 1):
            if cpu in out:
                return None
            out[cpu] = m.group(3) or RUNNING
    return out
