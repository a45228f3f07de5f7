"""What the kernel does by itself while CPUs are stuck: lockup detectors,
csd-lock debugging, RCU stalls and hung tasks, placed in guest time."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from harness.model import allbutself
from harness.model.expect import Range
from harness.model.features import BACKTRACE_ROW, NMI_BACKTRACE
from harness.model.prediction import MAY, MUST, Prediction
from harness.model.state import Activity, Cpu, Span
from harness.model.timing import CSD_TIMEOUT, DUR_BT_WAIT, INF, SLACK
from harness.scenario.types import Step


@dataclass
class Event:
    """Something the kernel does by itself some time after a CPU got stuck."""
    key: str
    pattern: str
    earliest: float
    latest: float | None                 # must have appeared by then; None: may only
    why: str
    extra: list[tuple[str, str]] = field(default_factory=list)   # further (key, pattern) lines
    extra_may: list[tuple[str, str]] = field(default_factory=list)  # lines that may be skipped
    answers: int | None = None           # CPU whose backtrace counter rises when it fires
    repeats: bool = False
    busy: tuple[float, float] | None = None   # window in which nmi_backtrace's backtrace_flag may be held
    irqs_off_cpu: int | str | None = None     # CPU (or "any") with interrupts off during busy
    # CPUs that get one backtrace IPI each when it fires (an all-but-self
    # backtrace, model/allbutself.py): at least one once it must have fired.
    answers_all: tuple[int, ...] = ()


class Detectors:
    """What the kernel does by itself while CPUs are stuck: the lockup
    detectors, csd-lock debugging, RCU stalls, the hung-task detector."""

    def _events(self) -> list[Event]:
        """Reports the lockup detectors (and csd-lock debugging) will print
        for the CPUs stuck now, with their time windows."""
        f, st = self.features, self.state
        T = float(f.watchdog_thresh)
        out: list[Event] = []
        stalls: list[Cpu] = []
        for cpu in st.cpus:
            if not cpu.stuck or cpu.since is None:
                continue
            stalls.append(cpu)
            found = (self._hardlockup_event(cpu, T), self._softlockup_event(cpu, T), self._csd_event(cpu))
            out.extend(ev for ev in found if ev is not None)
        for key, pattern, lo, hi, why in st.timers:
            out.append(Event(key, pattern, lo, hi, why))
        out.extend(self._rcu_stall_events(stalls))
        return out

    def _hardlockup_event(self, cpu: Cpu, T: float) -> Event | None:
        """The hard-lockup report for stuck CPU cpu, if a detector sees it."""
        f, st = self.features, self.state
        n, t0 = cpu.n, cpu.since
        # -- hard lockup: kernel/watchdog.c watchdog_hardlockup_check via
        # kernel/watchdog_buddy.c (the previous CPU checks every 3rd
        # hrtimer sample, sample period 2*thresh/5).
        if not (cpu.irqs_off and f.hardlockup_detector and T > 0):
            return None
        perf = f.arch.hardlockup_detector == "perf"
        buddy = n if perf else st.watchdog_buddy(n)
        if buddy is None or (not perf and st.cpus[buddy].irqs_off):
            return None
        base = t0.hi
        if st.last_hotplug is not None and st.last_hotplug.hi > t0.lo:
            base = max(base, st.last_hotplug.hi)
        base += sum(d for s0, d in st.blackouts if s0 + d >= t0.lo)
        ev = Event(f"hardlockup:cpu{n}:{cpu.episode}",
                   rf"Watchdog detected hard LOCKUP on cpu {n}\b",
                   t0.lo + 0.8 * T, base + 2.4 * T + SLACK,
                   f"CPU {n} has interrupts off; {'its perf NMI' if perf else f'CPU {buddy} (buddy)'}"
                   " sees its hrtimer count stand still")
        if f.backtrace_ipi and not perf:
            # trigger_single_cpu_backtrace(cpu) from the buddy's hrtimer;
            # skipped when another backtrace holds backtrace_flag
            ev.extra_may.append((f"hardlockup-bt:cpu{n}:{cpu.episode}",
                                 rf"Sending NMI from CPU {buddy} to CPUs {n}:"))
            if f.arch.reaches_irqs_off(NMI_BACKTRACE):
                ev.answers = n
                ev.extra_may.append((f"hardlockup-bt-answer:cpu{n}:{cpu.episode}",
                                     rf"NMI backtrace for cpu {n}\b"))
            else:
                ev.busy = (ev.earliest, ev.latest + DUR_BT_WAIT.hi)
                ev.irqs_off_cpu = buddy
        allbutself.hardlockup(ev, f, st, n, buddy, perf)
        return ev

    def _softlockup_event(self, cpu: Cpu, T: float) -> Event | None:
        """The soft-lockup report for stuck CPU cpu, if it runs with preemption off."""
        f, st = self.features, self.state
        n, t0 = cpu.n, cpu.since
        # -- soft lockup: kernel/watchdog.c watchdog_timer_fn, 2*thresh
        if not (cpu.activity is Activity.SOFTLOCKUP and f.softlockup_detector and T > 0):
            return None
        ref = cpu.touch or t0
        ev = Event(f"softlockup:cpu{n}:{cpu.episode}:{ref.lo:.2f}",
                   rf"BUG: soft lockup - CPU#{n} stuck for \d+s!",
                   ref.lo + 2 * T, ref.hi + 2.4 * T + SLACK,
                   f"CPU {n} runs with preemption off ({cpu.cause})")
        allbutself.softlockup(ev, f, st, n)
        return ev

    def _csd_event(self, cpu: Cpu) -> Event | None:
        """The csd-lock report for stuck CPU cpu, if it waits on another CPU's csd."""
        f, st = self.features, self.state
        n, t0 = cpu.n, cpu.since
        # -- csd lock: kernel/smp.c csd_lock_wait_toolong
        if cpu.csd_target is None or not f.csd_lock_debug:
            return None
        t = cpu.csd_target
        func = re.escape(cpu.csd_func or "")
        ev = Event(f"csd:cpu{n}:{cpu.episode}",
                   rf"csd: Detected non-responsive CSD lock \(#\d+\) on CPU#{n}, waiting \d+ ns "
                   rf"for CPU#{t:02d} {func}\+",
                   t0.lo + CSD_TIMEOUT, t0.hi + CSD_TIMEOUT + SLACK,
                   f"CPU {n} waits for CPU {t} to run {cpu.csd_func}")
        if st.cpus[t].in_hardirq and st.cpus[t].cause.startswith("in " + (cpu.csd_func or "?")):
            ev.extra.append((f"csd-handling:cpu{n}:{cpu.episode}",
                             r"csd: CSD lock \(#\d+\) handling this request\."))
        else:
            ev.extra.append((f"csd-unresponsive:cpu{n}:{cpu.episode}",
                             r"csd: CSD lock \(#\d+\) unresponsive\."))
            ev.extra.append((f"csd-resend:cpu{n}:{cpu.episode}",
                             rf"csd: Re-sending CSD lock \(#\d+\) IPI from CPU#{n:02d} to CPU#{t:02d}"))
        # dump_cpu_task(t): trigger_single_cpu_backtrace or a task dump
        if f.backtrace_ipi:
            ev.extra_may.append((f"csd-bt:cpu{n}:{cpu.episode}",
                                 rf"Sending NMI from CPU {n} to CPUs {t}:"))
            if st.cpus[t].irqs_off and not f.arch.reaches_irqs_off(NMI_BACKTRACE):
                ev.busy = (ev.earliest, ev.latest + DUR_BT_WAIT.hi)
            else:
                ev.answers = t
        else:
            ev.extra.append((f"csd-task:cpu{n}:{cpu.episode}", rf"Task dump for CPU {t}:"))
        return ev

    def _rcu_stall_events(self, stalls: list[Cpu]) -> list[Event]:
        """The RCU stall report and its backtraces of the stuck CPUs."""
        f = self.features
        out: list[Event] = []
        # -- RCU CPU stall: kernel/rcu/tree_stall.h; needs a grace period in
        # flight, so it may appear, never must. It dumps the stalled CPUs
        # with trigger_single_cpu_backtrace (rcu_dump_cpu_stacks -> dump_cpu_task).
        stallers = [c for c in stalls if not (c.cause.startswith("lkdtm LOOP") and f.preempt)]
        if stallers and f.rcu_stall_timeout and f.smp:
            first = min(c.since.lo for c in stallers if c.since is not None)
            ev = Event("rcu-stall", r"rcu: INFO: rcu_(sched|preempt) detected stalls on CPUs/tasks:",
                       first + f.rcu_stall_timeout, None,
                       "a grace period cannot end while a CPU is stuck in the kernel", repeats=True)
            if f.backtrace_ipi:
                mute = [c for c in stallers if c.irqs_off and not f.arch.reaches_irqs_off(NMI_BACKTRACE)]
                if mute:
                    ev.busy = (ev.earliest, INF)
                    ev.irqs_off_cpu = "any"
            out.append(ev)
            for c in stallers:
                if f.backtrace_ipi and (not c.irqs_off or f.arch.reaches_irqs_off(NMI_BACKTRACE)):
                    out.append(Event(f"rcu-stall-bt:cpu{c.n}", rf"NMI backtrace for cpu {c.n}\b",
                                     ev.earliest, None, "RCU stall dump of a stuck CPU",
                                     answers=c.n, repeats=True))
        return out

    def awaited(self, pattern: str, start: Span, timeout: float) -> Event | None:
        """The next event whose line a wait_for step with this pattern would
        stop at: it must be due before the step times out, and the pattern
        must match the event's line (its regex with the escapes taken out)."""
        st = self.state
        due = [ev for ev in self._events() if ev.key not in st.reported and ev.latest is not None
               and ev.latest <= start.lo + timeout and re.search(pattern, re.sub(r"\\(.)", r"\1", ev.pattern))]
        return min(due, key=lambda ev: ev.latest) if due else None

    def _background(self, p: Prediction, start: Span, end: Span, certain: str | None = None) -> None:
        """certain: the key of an event the step ends with (wait_for): it is
        printed by the end of the step whatever the step's span says."""
        st = self.state
        for ev in self._events():
            if ev.key in st.reported:
                continue
            overlaps = end.hi >= ev.earliest and (ev.latest is None or start.lo <= ev.latest)
            if (ev.latest is not None and end.lo >= ev.latest) or ev.key == certain:
                when = MUST
                st.reported.add(ev.key)
            elif overlaps:
                when = MAY
            else:
                continue
            p.expect_console(ev.key, ev.pattern, when, ev.why)
            for key, pattern in ev.extra:
                p.expect_console(key, pattern, when, ev.why)
            for key, pattern in ev.extra_may:
                p.expect_console(key, pattern, MAY, ev.why + " (skipped if another backtrace is in progress)")
            if ev.answers is not None and ev.answers in p.comparable_cpus and BACKTRACE_ROW in self.features.ipi_rows():
                p.add_counter(BACKTRACE_ROW, ev.answers, Range(0, None if ev.repeats else 1))
            allbutself.counters(p, ev, when == MUST, BACKTRACE_ROW in self.features.ipi_rows())

    def _contention(self, t: Span) -> tuple[list[str], dict[int | str, str]]:
        """(reasons the backtrace_flag may be held at t, CPUs that may have
        interrupts off at t because a detector is waiting in an interrupt)."""
        flag: list[str] = []
        irqs_off: dict[int | str, str] = {}
        for ev in self._events():
            if ev.busy is None:
                continue
            lo, hi = ev.busy
            if t.hi >= lo and t.lo <= hi:
                flag.append(ev.why)
                if ev.irqs_off_cpu is not None:
                    irqs_off[ev.irqs_off_cpu] = ev.why
        return flag, irqs_off

    def hung_task(self, p: Prediction, step: Step) -> None:
        h = self.features.hung_task_timeout
        if h and step.timeout > h:
            p.expect_console("hung-task", r"INFO: task \S+:\d+ blocked for more than \d+ seconds\.", MAY,
                     "the hotplug writer sleeps uninterruptibly")
