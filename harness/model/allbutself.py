"""The lockup detectors' all-but-self backtraces (36759e343ff9,
"nmi_backtrace: allow excluding an arbitrary CPU", the arm64 seed's
dependency), as hooks the engine calls on its detector events.

kernel/watchdog.c (6.12):
- soft lockup, detected by the stuck CPU n in its own hrtimer: after its own
  register dump, softlockup_all_cpu_backtrace makes it call
  trigger_allbutcpu_cpu_backtrace(n): every other online CPU gets one
  backtrace IPI and prints "NMI backtrace for cpu m"; n's counter stays put.
- hard lockup of CPU n seen by its buddy b (watchdog_buddy.c): b first asks
  n alone (trigger_single_cpu_backtrace, modelled by the engine), then
  hardlockup_all_cpu_backtrace makes it call trigger_allbutcpu_cpu_backtrace(n):
  b prints its own stack directly (nmi_cpu_backtrace(NULL), no IPI) and
  every CPU but n and b gets one IPI. With the perf detector n detects
  itself and b is n.
Without an arch backtrace IPI (a seed revert) trigger_allbutcpu_cpu_backtrace()
does nothing. On RISC-V (and arm64 without pseudo-NMI) the single backtrace
to n waits 10 s first, so the all-but-self round comes that much later."""
from __future__ import annotations

import re
from typing import Any

from harness.model.expect import Range
from harness.model.features import BACKTRACE_ROW, Features
from harness.parsers import cpulist


def _round(ev: Any, sender: int, targets: list[int], certain: bool) -> None:
    lines = ev.extra if certain else ev.extra_may
    if targets:
        lines.append((f"{ev.key}:allbutself", rf"Sending NMI from CPU {sender} to CPUs "
                                              rf"{re.escape(cpulist.format(targets))}:"))
    for m in targets:
        lines.append((f"{ev.key}:allbutself-cpu{m}", rf"NMI backtrace for cpu {m}\b"))
    ev.answers_all = tuple(targets)


def softlockup(ev: Any, f: Features, st: Any, n: int) -> None:
    if not (f.softlockup_all_cpu_backtrace and f.backtrace_ipi):
        return
    _round(ev, n, [c for c in st.online() if c != n], certain=True)


def hardlockup(ev: Any, f: Features, st: Any, n: int, buddy: int, perf: bool) -> None:
    if not (f.hardlockup_all_cpu_backtrace and f.backtrace_ipi):
        return
    detector = n if perf else buddy
    # The detector dumps itself without an IPI.
    ev.extra_may.append((f"{ev.key}:allbutself-self", rf"NMI backtrace for cpu {detector}\b"))
    # After a 10 s wait for n when n cannot take the IPI (ev.busy set).
    _round(ev, detector, [c for c in st.online() if c not in (n, detector)], certain=ev.busy is None)


def counters(p: Any, ev: Any, must: bool, has_row: bool) -> None:
    """One backtrace IPI on each CPU of the round: certain once the event
    must have fired (and its round is not behind a 10 s wait), possible
    before. The excluded CPU gets none from it."""
    if not has_row or not ev.answers_all:
        return
    lo = 1 if must and ev.busy is None else 0
    for c in ev.answers_all:
        if c in p.comparable_cpus:
            p.add_counter(BACKTRACE_ROW, c, Range(lo, None))
