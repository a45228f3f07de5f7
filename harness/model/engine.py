"""The reference model: steps in, predictions out. No kernel in it; every
rule cites the kernel function it mirrors (docs/model.md has the list)."""
from __future__ import annotations

import copy
import itertools
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from ..parsers import cpulist
from ..parsers.backtrace import FALLBACK, FALLBACK_IDLE, FULL
from ..scenario import Step
from . import allbutself, kdb as kdbfmt
from .expect import Range, one_of
from .features import (BACKTRACE_ROW, CALL_ROW, EXACT_ROWS, KGDB_ROW, NMI_BACKTRACE,
                       NMI_KGDB_ROUNDUP, NMI_STOP, ROW_IPI, Features)
from .prediction import (ABORTED, HANG, KDB_HELD, MAY, MUST, NO_EFFECT, NOT_REACHED, OK, OOPS, PANIC,
                         REFUSED, UNMODELLED, UNSUPPORTED, BacktracePrediction, Claim,
                         HotplugPrediction, KdbPrediction, Prediction, Report, SnapshotPrediction)
from .state import Activity, Cpu, Load, MachineState, Span
from .steps import as_step, expand_checked, with_defaults
from .. import vcpus as loc

# harness/scenario.py LKDTM_BACKGROUND (written in the background: never return)
LKDTM_BACKGROUND = ("HARDLOCKUP", "SOFTLOCKUP", "SPINLOCKUP", "HUNG_TASK", "SMP_CALL_LOCKUP", "LOOP")
# crash types whose effect does not depend on the CPU they run on
LKDTM_ANYWHERE = ("WARNING", "WARNING_MESSAGE", "PANIC", "BUG", "EXCEPTION", "HUNG_TASK")

INF = math.inf

# Step durations (seconds of guest time, lower and upper bound). The model
# only needs them to place the lockup detectors' reports in time.
DUR_CONSOLE = Span(0.01, 2.0)        # a console command
DUR_SNAPSHOT = Span(0.01, 0.5)
DUR_BACKGROUND = Span(0.01, 0.5)     # starting a background writer (lkdtm, load)
DUR_SYSRQ = Span(0.05, 1.5)
DUR_BT_WAIT = Span(10.0, 11.5)       # lib/nmi_backtrace.c: 10 * 1000 x mdelay(1); measured 10.2 s
DUR_KDB = Span(0.3, 3.0)
DUR_KDB_TIMEOUT = Span(1.0, 1.2)     # debug_core.c kgdb_cpu_enter: MSEC_PER_SEC x udelay(1000)
DUR_ONLINE_FAST = Span(0.05, 0.8)    # measured ~0.10 s, up to 0.51 s on a loaded host
DUR_ONLINE_STALL = Span(0.05, 1.6)   # measured ~1.05 s in 4 of 15 with 3908ba2e0b24 reverted
DUR_OFFLINE = Span(0.05, 1.0)
# Upper bound claimed for a "fast" online: between the two measured
# populations, fixed kernel up to 510 ms (host loaded by a second QEMU) and
# the 3908ba2e0b24 stall 950-4020 ms (a timer wake-up of a CPU in WFI).
FAST_ONLINE_MS = 800
CSD_TIMEOUT = 5.0                    # kernel/smp.c csd_lock_timeout = 5000 ms
CSD_DUMP_WAIT = 10.0
SLACK = 1.0                          # timer and console jitter added to detector deadlines


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


class Model:
    """Feed steps one at a time (step()) or all at once (run())."""

    def __init__(self, features: Features | None = None, cpus: int = 4, *,
                 uart_cpu: int | None = None, reboot: bool = False) -> None:
        self.features = features or Features.riscv_6_12()
        self.reboot = reboot                 # a reset reboots the guest (no -no-reboot)
        if uart_cpu is None:
            uart_cpu = self.features.arch.uart_irq_cpu
        if cpus > self.features.nr_cpus:
            raise ValueError(f"{cpus} CPUs but NR_CPUS is {self.features.nr_cpus}")
        self.state = MachineState.boot(cpus, uart_cpu)
        self.predictions: list[Prediction] = []
        self._index = 0

    # ================================================================ driver
    def run(self, steps: Iterable[Any]) -> "Run":
        for step in expand_checked(steps):
            self.step(step)
        return Run(self.features, self.state.ncpus, list(self.predictions), self.state)

    def step(self, raw: Any) -> Prediction:
        step = as_step(raw, len(self.predictions))
        if step.kind == "repeat":
            raise ValueError(f"step '{step.name}': expand() repeat steps before stepping")
        args = with_defaults(step)
        st = self.state
        start = st.clock
        self._index = len(self.predictions)
        st.now_step = self._index
        p = Prediction(index=len(self.predictions), name=step.name, kind=step.kind, args=args,
                       start=start, end=start, online_before=st.online(), online_after=st.online(),
                       activities={n: st.describe_cpu(n, start) for n in range(st.ncpus)})
        if st.wedged is not None:
            p.outcome = {NOT_REACHED}
            p.note(f"not reached: {st.wedged}")
            self.predictions.append(p)
            return p
        handler: Callable[[Prediction, dict, Step], Span] | None = getattr(self, "_do_" + step.kind, None)
        if handler is None:
            p.outcome = {UNMODELLED}
            p.note(f"the model does not know step kind '{step.kind}'")
            duration = Span(0.0, step.timeout)
        else:
            duration = handler(p, args, step)
        st = self.state                      # a handler may have replaced it (branches)
        if HANG in p.outcome and len(p.outcome) == 1:
            duration = Span(step.timeout, step.timeout + SLACK)
            if st.wedged is None:
                st.wedged = f"step '{step.name}' never completes (the console shell is blocked)"
                st.wedge_outcome = HANG
        st.clock = start + duration
        p.end = st.clock
        p.online_after = st.online()
        self._background(p, start, st.clock)
        self._counter_defaults(p)
        self.predictions.append(p)
        return p

    # ================================================================ helpers
    def _counter_defaults(self, p: Prediction) -> None:
        f, st = self.features, self.state
        rows = f.ipi_rows()
        for n in p.comparable_cpus:
            cpu = st.cpus[n]
            if cpu.irqs_off and cpu.stuck_step < p.index:
                # Interrupts off since an earlier step: no IPI is taken, every
                # counter of that CPU stays put (except NMI-delivered ones).
                for row in rows:
                    ipi = ROW_IPI.get(row)
                    if ipi is not None and f.arch.reaches_irqs_off(ipi):
                        continue
                    p.counters.setdefault(row, {})[n] = Range(0, 0)
            for row in EXACT_ROWS:
                if row in rows:
                    p.counters.setdefault(row, {}).setdefault(n, Range(0, 0))

    def _hang(self, p: Prediction, why: str) -> None:
        p.outcome = {HANG}
        p.note(why)

    def _console_cpus(self, p: Prediction) -> bool:
        """A console command needs some CPU that still schedules tasks."""
        if not self.state.schedulable():
            self._hang(p, "no online CPU can run a task: the console command never runs")
            return False
        return True

    def _entry_cpus(self, p: Prediction, cpu: int | None, via: str,
                    background: bool = False) -> list[int]:
        """CPUs the step's action may run on. Sets the outcome and returns []
        when it cannot run."""
        st = self.state
        if via == "break":
            u = st.uart_cpu
            if st.cpus[u].irqs_off:
                p.outcome = {NO_EFFECT}
                p.note(f"the console UART interrupt is routed to CPU {u}, which has interrupts off: "
                       "the BREAK and the sysrq key are never handled")
                return []
            return [u]
        if not self._console_cpus(p):
            return []
        if cpu is None:
            return st.schedulable()
        if not 0 <= cpu < st.ncpus or not st.cpus[cpu].online:
            p.outcome = {REFUSED}
            p.status = {"at_least": 1}
            p.note(f"taskset -c {cpu}: CPU {cpu} is not online (sched_setaffinity fails)")
            return []
        if not st.cpus[cpu].schedulable:
            if background:
                p.outcome = {NO_EFFECT}
                p.note(f"CPU {cpu} never schedules ({st.describe_cpu(cpu)}): the background "
                       "command pinned to it never runs")
            else:
                self._hang(p, f"CPU {cpu} never schedules ({st.describe_cpu(cpu)}): the command "
                              "pinned to it never runs")
            return []
        return [cpu]

    def _make_stuck(self, cpu: Cpu, activity: Activity, cause: str, since: Span,
                    in_hardirq: bool = False) -> None:
        st = self.state
        st.episodes += 1
        cpu.activity = activity
        cpu.cause = cause
        cpu.since = since
        cpu.touch = since
        cpu.episode = st.episodes
        cpu.in_hardirq = in_hardirq
        cpu.csd_target = None
        cpu.csd_func = None
        cpu.stuck_step = self._index

    def _branch(self, p: Prediction, candidates: list[int],
                fn: Callable[[Prediction, int], Span]) -> Span:
        """Run fn once per candidate CPU (an unknown sender) and merge."""
        if len(candidates) == 1:
            return fn(p, candidates[0])
        base = copy.deepcopy(self.state)
        results: list[tuple[Prediction, Span, MachineState]] = []
        for c in candidates:
            self.state = copy.deepcopy(base)
            q = copy.deepcopy(p)
            d = fn(q, c)
            results.append((q, d, self.state))
        _merge_into(p, [q for q, _, _ in results])
        states = [s for _, _, s in results]
        merged = states[0]
        keys = set().union(*(s.pending_csd for s in states))
        merged.pending_csd = {k: all(s.pending_csd.get(k, False) for s in states) for k in keys}
        if any([c.activity for c in s.cpus] != [c.activity for c in merged.cpus] for s in states):
            p.note("the state after this step depends on which CPU ran it; the model goes on "
                   f"as if CPU {candidates[0]} did")
        self.state = merged
        d = results[0][1]
        for _, dd, _ in results[1:]:
            d = d.union(dd)
        p.note(f"the CPU is not pinned: any of {cpulist.format(candidates)} may run it")
        return d

    # ================================================================ background
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
            n, t0 = cpu.n, cpu.since
            stalls.append(cpu)
            # -- hard lockup: kernel/watchdog.c watchdog_hardlockup_check via
            # kernel/watchdog_buddy.c (the previous CPU checks every 3rd
            # hrtimer sample, sample period 2*thresh/5).
            if cpu.irqs_off and f.hardlockup_detector and T > 0:
                perf = f.arch.hardlockup_detector == "perf"
                buddy = n if perf else st.watchdog_buddy(n)
                if buddy is not None and (perf or not st.cpus[buddy].irqs_off):
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
                    out.append(ev)
            # -- soft lockup: kernel/watchdog.c watchdog_timer_fn, 2*thresh
            if cpu.activity is Activity.SOFTLOCKUP and f.softlockup_detector and T > 0:
                ref = cpu.touch or t0
                ev = Event(f"softlockup:cpu{n}:{cpu.episode}:{ref.lo:.2f}",
                           rf"BUG: soft lockup - CPU#{n} stuck for \d+s!",
                           ref.lo + 2 * T, ref.hi + 2.4 * T + SLACK,
                           f"CPU {n} runs with preemption off ({cpu.cause})")
                allbutself.softlockup(ev, f, st, n)
                out.append(ev)
            # -- csd lock: kernel/smp.c csd_lock_wait_toolong
            if cpu.csd_target is not None and f.csd_lock_debug:
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
                out.append(ev)
        for key, pattern, lo, hi, why in st.timers:
            out.append(Event(key, pattern, lo, hi, why))
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

    def _background(self, p: Prediction, start: Span, end: Span) -> None:
        st = self.state
        for ev in self._events():
            if ev.key in st.reported:
                continue
            overlaps = end.hi >= ev.earliest and (ev.latest is None or start.lo <= ev.latest)
            if ev.latest is not None and end.lo >= ev.latest:
                when = MUST
                st.reported.add(ev.key)
            elif overlaps:
                when = MAY
            else:
                continue
            p.report(ev.key, ev.pattern, when, ev.why)
            for key, pattern in ev.extra:
                p.report(key, pattern, when, ev.why)
            for key, pattern in ev.extra_may:
                p.report(key, pattern, MAY, ev.why + " (skipped if another backtrace is in progress)")
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

    # ================================================================ steps
    def _do_snapshot(self, p: Prediction, a: dict, step: Step) -> Span:
        if not self._console_cpus(p):
            return DUR_SNAPSHOT
        rows = self.features.ipi_rows()
        absent = [r for r in EXACT_ROWS if r not in rows]
        p.snapshot = SnapshotPrediction(str(a["label"]), self.state.online(), rows, absent)
        return DUR_SNAPSHOT

    def _do_shell(self, p: Prediction, a: dict, step: Step) -> Span:
        if not self._console_cpus(p):
            return DUR_CONSOLE
        self._opaque(p)
        return DUR_CONSOLE

    def _opaque(self, p: Prediction) -> None:
        """A shell command is opaque: it may change no CPU state the model
        tracks, but it may move any IPI counter (e.g. it writes sysrq l)."""
        p.note("shell commands are opaque to the model: it assumes they change no CPU state, "
               "and claims nothing about IPI counters while they run")
        for row in EXACT_ROWS:
            for n in self.state.online():
                p.counters.setdefault(row, {})[n] = Range(0, None)

    def _do_sleep(self, p: Prediction, a: dict, step: Step) -> Span:
        s = float(a["seconds"] or 0.0)
        return Span(s, s + 0.5)

    def _do_wait_for(self, p: Prediction, a: dict, step: Step) -> Span:
        # Waiting for a console line changes nothing; it only lets time pass
        # (up to the step's timeout), which the detectors' timing depends on.
        return Span(0.0, float(step.timeout))

    # ---------------------------------------------------------------- sysrq
    def _do_sysrq(self, p: Prediction, a: dict, step: Step) -> Span:
        f = self.features
        key, cpu, via = str(a["key"]), a["cpu"], a["via"] or "proc"
        if not f.magic_sysrq:
            p.outcome = {UNSUPPORTED}
            p.note("kernel without CONFIG_MAGIC_SYSRQ")
            return DUR_CONSOLE
        if via == "break" and cpu is not None:
            p.note("via break: the handler runs on the CPU that takes the UART interrupt, not on 'cpu'")
        candidates = self._entry_cpus(p, cpu if via == "proc" else None, via)
        if not candidates:
            return DUR_CONSOLE
        if key == "l":
            p.report("sysrq-l", r"sysrq: Show backtrace of all active CPUs", MUST, basis="both")
            return self._branch(p, candidates, lambda q, s: self._sysrq_l(q, s, via))
        if key == "g":
            p.report("sysrq-g", r"sysrq: DEBUG", MUST)
            p.note("sysrq g outside a kdb step: the machine stays in kdb (nobody types go)")
            return self._branch(p, candidates,
                                lambda q, s: self._kdb_session(q, s, via, [], False, leave=False))
        if key == "c":
            p.report("sysrq-c", r"sysrq: Trigger a crash", MUST)
            return self._branch(p, candidates, lambda q, s: self._panic(q, s, "sysrq triggered crash"))
        p.note(f"sysrq '{key}' moves no IPI counter the model knows of")
        return DUR_SYSRQ

    def _ipi_answer(self, n: int, t: Span) -> set[str | None]:
        st, f = self.state, self.features
        cpu = st.cpus[n]
        if cpu.stuck:
            return {FULL}
        busy = st.busy(n, t)
        idle = set(f.arch.idle_forms)
        # No busy loop does not mean idle: the console shell, its children and
        # kworkers run somewhere. Measured on 6.12.107: a CPU with no load
        # printed a full trace instead of "skipped: idling" (backtrace-ipi, CPU 3).
        return {FULL} if busy == "yes" else idle | {FULL}

    def _fallback_answer(self, n: int, t: Span) -> set[str | None]:
        st = self.state
        if st.cpus[n].stuck:
            return {FALLBACK}
        busy = st.busy(n, t)
        # As in _ipi_answer: a CPU without a busy loop may still be running a task.
        return {FALLBACK} if busy == "yes" else {FALLBACK, FALLBACK_IDLE}

    def _sysrq_l(self, p: Prediction, sender: int, via: str) -> Span:
        f, st = self.features, self.state
        t = st.clock
        online = st.online()
        targets = [c for c in online if c != sender]
        forms: dict[int, set[str | None]] = {n: {None} for n in range(st.ncpus)}
        if f.backtrace_ipi:
            # lib/nmi_backtrace.c nmi_trigger_cpumask_backtrace(cpu_online_mask, -1, raise)
            flag, _ = self._contention(t)
            forms[sender] = {FULL}                 # nmi_cpu_backtrace(NULL) -> dump_stack()
            mute = []
            for c in targets:
                cpu = st.cpus[c]
                if cpu.irqs_off and not f.arch.reaches_irqs_off(NMI_BACKTRACE):
                    mute.append(c)
                    continue
                forms[c] = self._ipi_answer(c, t)
                p.add_counter(BACKTRACE_ROW, c, Range(1, 1))
            wait = {bool(mute)}
            bt = BacktracePrediction("ipi", {sender}, {sender: targets}, forms, wait)
            if targets:
                p.report(f"sending:{sender}", rf"Sending NMI from CPU {sender} to CPUs "
                         rf"{re.escape(cpulist.format(targets))}:", MUST, basis="both")
            if mute:
                p.note(f"CPU(s) {cpulist.format(mute)} have interrupts off and cannot take the backtrace "
                       "IPI: the handler waits 10 s and prints nothing for them")
            if flag:
                # test_and_set_bit(0, &backtrace_flag): a trigger already in
                # progress makes this one return without printing anything.
                bt.swallowed = True
                for c in forms:
                    forms[c] = forms[c] | {None}
                for c in targets:
                    if c not in mute:
                        p.counters[BACKTRACE_ROW][c] = Range(0, 1)
                bt.wait = bt.wait | {False}
                for r in p.reports:
                    if r.key == f"sending:{sender}":
                        r.when = MAY
                p.note("another CPU backtrace may be in progress (" + "; ".join(sorted(set(flag))) +
                       "): sysrq-l may then print nothing at all")
            p.backtrace = bt
            d = DUR_BT_WAIT if True in bt.wait else DUR_SYSRQ
            if len(bt.wait) > 1:
                d = DUR_SYSRQ.union(DUR_BT_WAIT)
            if via == "break" and True in bt.wait:
                st.blackouts.append((t.lo, d.hi))      # the wait runs in the UART interrupt
            return d
        # drivers/tty/sysrq.c: "CPU%d:" + own stack, then schedule_work() ->
        # sysrq_showregs_othercpus on this CPU's kworker -> smp_call_function(showacpu)
        forms[sender] = {FALLBACK}
        p.report(f"fallback:{sender}", rf"(?m)\bCPU{sender}:\s*$", MUST, basis="both")
        if not st.cpus[sender].schedulable:
            # the work is queued on the sender CPU, whose kworker never runs
            p.backtrace = BacktracePrediction("fallback", {sender}, {sender: []}, forms, {False})
            p.note(f"CPU {sender} never schedules ({st.describe_cpu(sender)}): the queued work never "
                   "runs, no other CPU is asked")
            return DUR_SYSRQ
        blocked_at = None
        maybe_block = False
        order = sorted(targets)
        for i, c in enumerate(order):
            certain = st.pending_csd.get((sender, c))
            if certain is True:
                blocked_at = c
                break
            if certain is False:
                maybe_block = True
            cpu = st.cpus[c]
            ans = set() if cpu.irqs_off else self._fallback_answer(c, t)
            if cpu.irqs_off:
                forms[c] = {None}
                st.pending_csd[(sender, c)] = True
                p.note(f"CPU {c} has interrupts off: showacpu never runs there and CPU {sender}'s csd "
                       "for it stays locked (a later fallback sysrq-l from CPU "
                       f"{sender} will block in csd_lock)")
            else:
                forms[c] = ans | ({None} if maybe_block else set())
                if not maybe_block:
                    p.add_counter(CALL_ROW, c, Range(1, None))
        bt = BacktracePrediction("fallback", {sender}, {sender: []}, forms, {False})
        if blocked_at is not None:
            bt.blocked_at = blocked_at
            for c in order:
                if c < blocked_at and not st.cpus[c].irqs_off:
                    forms[c] = forms[c] | {None}     # queued, but no IPI was sent
                    p.counters.get(CALL_ROW, {}).pop(c, None)
                elif c >= blocked_at:
                    forms[c] = {None}
            cpu = st.cpus[sender]
            self._make_stuck(cpu, Activity.SOFTLOCKUP,
                             f"kworker blocked in csd_lock() for CPU {blocked_at} (smp_call_function)",
                             t + Span(0.0, DUR_SYSRQ.hi))
            cpu.csd_target = blocked_at
            cpu.csd_func = "showacpu"
            p.note(f"CPU {sender}'s csd for CPU {blocked_at} is still locked from an earlier fallback "
                   f"sysrq-l: the kworker on CPU {sender} spins in csd_lock() with preemption off "
                   "and no IPI is sent")
        elif maybe_block:
            p.note("an earlier fallback sysrq-l may have left a csd locked: this one may block")
        p.backtrace = bt
        return DUR_SYSRQ

    # ---------------------------------------------------------------- kdb
    def _do_kdb(self, p: Prediction, a: dict, step: Step) -> Span:
        f = self.features
        cpu = a["cpu"]
        via = a.get("via") or ("proc" if cpu is not None else "break")
        commands = [str(c) for c in (a.get("commands") or [])]
        go_twice = bool(a.get("go_twice"))
        if not f.kgdb:
            p.outcome = {UNSUPPORTED}
            p.note("kernel without CONFIG_KGDB/CONFIG_KGDB_KDB: sysrq g does nothing")
            return DUR_CONSOLE
        if not f.kgdb_attached:
            p.outcome = {NO_EFFECT}
            p.report("kgdb-no-io", r"ERROR: No KGDB I/O module available", MUST)
            return DUR_CONSOLE
        candidates = self._entry_cpus(p, cpu if via == "proc" else None, via)
        if not candidates:
            return DUR_CONSOLE
        p.report("sysrq-g", r"sysrq: DEBUG", MUST)
        return self._branch(p, candidates,
                            lambda q, s: self._kdb_session(q, s, via, commands, go_twice, leave=True))

    def _kdb_session(self, p: Prediction, init: int, via: str, commands: list[str], go_twice: bool,
                     leave: bool, catastrophic: bool = False) -> Span:
        """kgdb_cpu_enter() on init, round-up, commands, then go."""
        f, st = self.features, self.state
        t = st.clock
        _, maybe_off = self._contention(t)
        options: list[set[str]] = []
        certain, maybe, mute = [], [], []
        for n in range(st.ncpus):
            cpu = st.cpus[n]
            if not cpu.online:
                options.append({kdbfmt.OFFLINE})
                continue
            if n == init:
                options.append({kdbfmt.RUNNING})        # kdb_task_state_char: never '-' on kdb_initial_cpu
                continue
            reach = not cpu.irqs_off or (f.kgdb_roundup_ipi and f.arch.reaches_irqs_off(NMI_KGDB_ROUNDUP))
            if not f.kgdb_roundup_ipi and n in st.rounding_up:
                reach = False                           # generic roundup skips it (rounding_up)
            if not reach:
                options.append({kdbfmt.UNRESPONSIVE})
                mute.append(n)
                continue
            if cpu.stuck:
                base = {kdbfmt.RUNNING}
            else:
                busy = st.busy(n, t)
                # Measured: "0(-), 1-2, 3(-)" with no load anywhere: CPU 1 was
                # running the console shell when the round-up came.
                base = {kdbfmt.RUNNING} if busy == "yes" else {kdbfmt.IDLE, kdbfmt.RUNNING}
            if n in maybe_off or "any" in maybe_off:
                base = base | {kdbfmt.UNRESPONSIVE}
                maybe.append(n)
            else:
                certain.append(n)
            options.append(base)
        combos = math.prod(len(o) for o in options)
        available: set[str] = set()
        unresponsive: set[tuple[int, ...]] = set()
        if combos <= 4096:
            for chars in itertools.product(*options):
                available.add(kdbfmt.available_cpus(chars, f.nr_cpus))
                unresponsive.add(tuple(i for i, c in enumerate(chars) if c == kdbfmt.UNRESPONSIVE))
        else:
            p.note("too many possible CPU states to list the 'Available cpus' strings")
            for extra in itertools.product([False, True], repeat=len(maybe)):
                unresponsive.add(tuple(sorted(mute + [m for m, on in zip(maybe, extra) if on])))
        catastrophic_opts = {catastrophic or bool(u) for u in unresponsive}
        timeout_opts = {bool(u) for u in unresponsive}

        # counters: the round-up IPI (983f12149942) or smp_call_function_single_async
        if f.kgdb_roundup_ipi:
            for n in certain:
                p.add_counter(KGDB_ROW, n, Range(1, 1))
            for n in maybe:
                p.add_counter(KGDB_ROW, n, Range(0, 1))
        else:
            for n in certain:
                p.add_counter(CALL_ROW, n, Range(1, None))
            for n in mute:
                st.rounding_up.add(n)

        # commands
        current = init
        printed = False
        lines: list[str] = []
        for cmd in commands:
            words = cmd.split()
            if not words:
                continue
            if words[0] in ("cpu", "btc") and len(words) == 1:
                printed = True
                if words[0] == "btc":
                    for n in mute:
                        lines.append(f"WARNING: no task for cpu {n}")
            elif words[0] == "cpu" and len(words) == 2 and words[1].isdigit():
                target = int(words[1])
                if target == init or target in certain:
                    current = target
                elif target in mute or target >= st.ncpus or not st.cpus[target].online:
                    lines.append("Invalid cpu number")
            elif words[0] == "go":
                p.note("'go' in commands: the kdb step leaves with go itself")
        # go (kdb_main.c kdb_go)
        if current != init:
            go_refused, resumed = {True}, {False}
            lines.append(f'go must execute on the entry cpu, please use "cpu {init}" and then execute go')
        elif not leave:
            go_refused, resumed = catastrophic_opts, {False}
        else:
            go_refused = catastrophic_opts
            resumed = {True} if go_twice else {not c for c in catastrophic_opts}

        p.kdb = KdbPrediction({init}, via, available, printed, unresponsive, timeout_opts,
                              go_refused, resumed, lines, {current})
        if p.args.get("probe"):
            # Sampled while kdb waits for input: the entry CPU polls the
            # console, the CPUs that answered the round-up spin in
            # kgdb_cpu_enter(), the others stay where they were.
            p.vcpus = {}
            for n in range(st.ncpus):
                if n == init and st.cpus[n].online:
                    p.vcpus[n] = {loc.KDB}
                elif n in certain:
                    p.vcpus[n] = {loc.KGDB_ROUNDUP}
                elif n in maybe:
                    p.vcpus[n] = {loc.KGDB_ROUNDUP} | self._locations(n)
                else:
                    p.vcpus[n] = self._locations(n)
        if via == "oops":
            p.report(f"kdb-enter:{init}", rf"Entering kdb \(current=0x[0-9a-f]+, pid \d+\) on processor {init} ",
                     MUST)
        else:
            # The source reads as "Keyboard Entry" for sysrq g; 6.12.107 on
            # RISC-V printed "NonMaskable Interrupt @ <arch_kgdb_breakpoint>"
            # in every measured run, so both are accepted.
            p.report(f"kdb-enter:{init}", rf"Entering kdb \(current=0x[0-9a-f]+, pid \d+\) on processor {init} "
                     r"due to (?:Keyboard Entry|NonMaskable Interrupt @ 0x[0-9a-f]+)", MUST, basis="both")
        if timeout_opts == {True}:
            p.report("kdb-timeout", r"Timed out waiting for secondary CPUs\.", MUST)
        elif True in timeout_opts:
            p.report("kdb-timeout", r"Timed out waiting for secondary CPUs\.", MAY)
        if leave and current == init:
            if go_refused == {True}:
                p.report("kdb-go-twice", r"type go a second time if you really want to continue", MUST,
                         basis="both")
            elif True in go_refused:
                p.report("kdb-go-twice", r"type go a second time if you really want to continue", MAY)
        if mute:
            p.note(f"CPU(s) {cpulist.format(mute)} cannot take the round-up "
                   + ("IPI" if f.kgdb_roundup_ipi else "cross call") + " with interrupts off: shown (D)")
        if maybe:
            p.note(f"CPU(s) {cpulist.format(maybe)} may be busy in a detector's backtrace with "
                   "interrupts off and miss the 1 s round-up")

        d = DUR_KDB + Span(0.0, 0.1 * len(commands))
        if timeout_opts == {True}:
            d = d + DUR_KDB_TIMEOUT
        elif True in timeout_opts:
            d = d.union(d + DUR_KDB_TIMEOUT)
        end = t + d
        st.blackouts.append((t.lo, d.hi))
        if resumed == {False}:
            st.wedged = f"the machine is held in kdb since step '{p.name}'"
            st.wedge_outcome = KDB_HELD
            p.outcome = {KDB_HELD} | (p.outcome - {OK})
        else:
            if False in resumed:
                p.outcome = p.outcome | {KDB_HELD}
                p.note("the machine may stay in kdb ('go' may be refused); later steps assume it left")
            # dbg_touch_watchdogs() on every CPU leaving kgdb_cpu_enter
            for n in [init] + certain + maybe:
                cpu = st.cpus[n]
                if cpu.activity is Activity.SOFTLOCKUP:
                    cpu.touch = end
        return d

    # ---------------------------------------------------------------- outside the guest
    def _locations(self, n: int) -> set[str]:
        """Where CPU n's vCPU may be found by a probe (harness.vcpus)."""
        st = self.state
        cpu = st.cpus[n]
        if not cpu.online:
            return {self.features.arch.offline_location}
        if cpu.activity is Activity.HARDLOCKUP:
            # interrupts off: it cannot be anywhere but the code that spins
            return {loc.LKDTM} if "lkdtm" in cpu.cause.lower() else {loc.KERNEL}
        if cpu.activity is Activity.SOFTLOCKUP:
            if cpu.csd_target is not None:
                return {loc.SMP_CALL, loc.KERNEL}      # csd_lock_wait(), or an interrupt on top
            return ({loc.LKDTM, loc.KERNEL} if "lkdtm" in cpu.cause.lower() else {loc.KERNEL})
        if st.busy(n) == "yes":
            return {loc.USER, loc.KERNEL}
        # idle, or running the console shell or a kernel thread at that instant
        return {loc.IDLE, loc.KERNEL, loc.USER}

    def _do_vcpus(self, p: Prediction, a: dict, step: Step) -> Span:
        p.vcpus = {n: self._locations(n) for n in range(self.state.ncpus)}
        return Span(0.0, 0.1)               # the VM is stopped while sampled: no guest time

    def _do_pause(self, p: Prediction, a: dict, step: Step) -> Span:
        p.note("the virtual clock stands still while QEMU is stopped: no guest time passes, "
               "no detector fires")
        return Span(0.0, 0.5) + DUR_CONSOLE + DUR_CONSOLE   # the two uptime reads

    def _do_reset(self, p: Prediction, a: dict, step: Step) -> Span:
        st = self.state
        if not self.reboot:
            p.outcome = {ABORTED}
            st.wedged = "QEMU exited on the reset (-no-reboot)"
            st.wedge_outcome = ABORTED
            return Span(0.0, 0.5)
        self.state = MachineState.boot(st.ncpus, self.features.arch.uart_irq_cpu)
        self.state.clock = st.clock
        p.note("the guest reboots: every CPU online and idle again, loads and stuck CPUs gone")
        return Span(0.5, 5.0) + float(a.get("after") or 0.0)

    def _do_balloon(self, p: Prediction, a: dict, step: Step) -> Span:
        p.note("the balloon changes guest memory only; the model claims nothing about IPIs")
        return Span(0.1, float(step.timeout)) + float(a.get("hold") or 0.0)

    def _do_starve(self, p: Prediction, a: dict, step: Step) -> Span:
        s = float(a.get("seconds") or 0.0)
        p.note("starved vCPUs run slowly, not stopped: the model predicts no detector report "
               "(docs/qmp.md has the measurements)")
        if a.get("during"):
            self._opaque(p)
        return Span(s, s + SLACK)

    def _do_nmi(self, p: Prediction, a: dict, step: Step) -> Span:
        arch = self.features.arch
        p.facts["nmi:injected"] = ("QEMU's inject-nmi is accepted", arch.nmi_injection)
        if not arch.nmi_injection:
            p.outcome = {UNSUPPORTED}
            p.note(f"{arch.name}: no NMI to inject (QEMU refuses inject-nmi); reported as skipped")
        return Span(0.0, 0.1)

    def _do_panic(self, p: Prediction, a: dict, step: Step) -> Span:
        """LKDTM PANIC with pvpanic-pci: the harness leaves kdb (kgdb_panic)
        with go, and panic() goes on to the notifiers: GUEST_PANICKED."""
        f = self.features
        cpu = a.get("cpu")
        if not f.lkdtm:
            p.outcome = {REFUSED}
            p.note("kernel without CONFIG_LKDTM")
            return DUR_BACKGROUND
        cands = self._entry_cpus(p, None if cpu is None else int(cpu), "proc", background=True)
        if not cands:
            return DUR_BACKGROUND
        p.facts["panic:event"] = ("QEMU reports GUEST_PANICKED (pvpanic)", True)
        return self._branch(p, cands, lambda q, c: self._panic(q, c, "dumptest", leave_kdb=True))

    # ---------------------------------------------------------------- hotplug
    def _do_hotplug(self, p: Prediction, a: dict, step: Step) -> Span:
        f, st = self.features, self.state
        n, want = a["cpu"], a["online"]
        if n is None or want is None:
            p.outcome = {UNMODELLED}
            p.note("hotplug needs cpu and online")
            return DUR_CONSOLE
        n, want = int(n), bool(want)
        if not self._console_cpus(p):
            return DUR_CONSOLE
        if not (f.hotplug and f.smp) or not 0 <= n < st.ncpus:
            p.outcome = {REFUSED}
            p.hotplug = HotplugPrediction(n, want, False, {"at_least": 1},
                                          reason="no /sys/devices/system/cpu/cpuN/online")
            p.status = {"at_least": 1}
            return DUR_CONSOLE
        cpu = st.cpus[n]
        online = st.online()
        if want == cpu.online:
            # drivers/base/core.c device_online/device_offline: nothing to do
            p.hotplug = HotplugPrediction(n, want, False, 0, reason="already in that state")
            return Span(0.01, 0.5)
        if want:
            reasons = []
            if st.hotplug_lock:
                self._hang(p, f"{st.hotplug_lock}: cpus_write_lock() in _cpu_up() waits forever")
                p.hotplug = HotplugPrediction(n, True, False, None, reason=st.hotplug_lock)
                self._hung_task(p, step)
                return DUR_ONLINE_STALL
            if st.stuck():
                reasons = [f"CPU {c.n} ({c.cause})" for c in st.stuck()]
                p.outcome = {OK, HANG}
                p.note("stuck CPU(s) " + ", ".join(reasons) + " stall RCU; bringing a CPU up may block")
            cpu.activity = Activity.IDLE
            cpu.cause, cpu.since, cpu.touch = "", None, None
            st.last_hotplug = st.clock
            if self.features.arch.name != "riscv64":
                cls, limit, d = None, None, DUR_ONLINE_STALL
            elif f.sbi_ipi_early:
                cls, limit, d = "fast", FAST_ONLINE_MS, DUR_ONLINE_FAST
            else:
                cls, limit, d = "may-stall", None, DUR_ONLINE_STALL
                p.note("3908ba2e0b24 " + ("reverted" if f.sbi_ipi_early is False else "status unknown")
                       + ": the SBI IPI is enabled at CPUHP_AP_ONLINE_DYN, after workqueue_online_cpu(); "
                       "an online may take ~1 s (FIELD-NOTES: 4 of 15)")
            if reasons:
                cls, limit = None, None
            p.hotplug = HotplugPrediction(n, True, True, 0, cls, limit)
            p.status = 0
            return d
        # offline
        if online == [n]:
            p.outcome = {REFUSED}
            p.status = {"at_least": 1}
            p.hotplug = HotplugPrediction(n, False, False, {"at_least": 1},
                                          reason="the last online CPU (kernel/cpu.c cpu_down_maps_locked: -EBUSY)")
            return DUR_CONSOLE
        blockers = []
        if st.hotplug_lock:
            blockers.append(st.hotplug_lock)
        for c in st.stuck():
            blockers.append(f"CPU {c.n} never schedules ({c.cause}): RCU grace periods and "
                            "per-CPU kthreads stall")
        if blockers:
            self._hang(p, "offlining blocks: " + "; ".join(blockers))
            p.hotplug = HotplugPrediction(n, False, False, None, reason="; ".join(blockers))
            self._hung_task(p, step)
            return DUR_OFFLINE
        cpu.activity = Activity.OFFLINE
        cpu.cause, cpu.since, cpu.touch = "", None, None
        st.last_hotplug = st.clock
        st.rounding_up.discard(n)
        for load in st.loads:
            if load.cpu == n and load.running(st.clock, self._index) != "no":
                load.cpu = None
                p.report(f"affine:{n}:{load.step}", rf"process \d+ \(\S+\) no longer affine to cpu{n}", MAY)
                p.note(f"the busy loop pinned to CPU {n} loses its affinity and may run on any CPU")
        if st.uart_cpu == n:
            st.uart_cpu = min(st.online())
            p.note(f"the UART interrupt moves to CPU {st.uart_cpu} (first online CPU of its affinity)")
        p.report(f"cpu-off:{n}", self.features.arch.offline_report.format(n=n), MUST)
        p.hotplug = HotplugPrediction(n, False, True, 0)
        p.status = 0
        return DUR_OFFLINE

    def _hung_task(self, p: Prediction, step: Step) -> None:
        h = self.features.hung_task_timeout
        if h and step.timeout > h:
            p.report("hung-task", r"INFO: task \S+:\d+ blocked for more than \d+ seconds\.", MAY,
                     "the hotplug writer sleeps uninterruptibly")

    # ---------------------------------------------------------------- load
    def _do_load(self, p: Prediction, a: dict, step: Step) -> Span:
        st = self.state
        cpu = a["cpu"]
        if cpu is None:
            p.outcome = {UNMODELLED}
            p.note("load needs a cpu")
            return DUR_BACKGROUND
        if not self._entry_cpus(p, int(cpu), "proc", background=True):
            return DUR_BACKGROUND
        start = st.clock + DUR_BACKGROUND
        seconds = a.get("seconds")
        end = start + float(seconds) if seconds else None
        st.loads.append(Load(int(cpu), start, end, p.name, self._index))
        return DUR_BACKGROUND

    # ---------------------------------------------------------------- lkdtm
    def _do_lkdtm(self, p: Prediction, a: dict, step: Step) -> Span:
        f, st = self.features, self.state
        crash = str(a["crash"] or "").upper()
        cpu = a["cpu"]
        if not f.lkdtm:
            p.outcome = {REFUSED}
            p.status = {"at_least": 1}
            p.note("kernel without CONFIG_LKDTM: no /sys/kernel/debug/provoke-crash/DIRECT")
            return DUR_BACKGROUND
        background = crash in LKDTM_BACKGROUND
        if cpu is None:
            if crash in LKDTM_ANYWHERE:
                # the unpinned writer runs on any CPU that schedules
                cands = self._entry_cpus(p, None, "proc")
                if not cands:
                    return DUR_BACKGROUND
                return self._branch(p, cands, lambda q, c: self._lkdtm(q, crash, c, pinned=False))
            p.outcome = {UNMODELLED}
            p.note(f"an unpinned {crash} may hit any CPU: pin it with cpu to model it")
            return DUR_BACKGROUND
        cpu = int(cpu)
        if not self._entry_cpus(p, cpu, "proc", background=background):
            return DUR_BACKGROUND
        return self._lkdtm(p, crash, cpu)

    def _lkdtm(self, p: Prediction, crash: str, cpu: int, pinned: bool = True) -> Span:
        f, st = self.features, self.state
        p.report("lkdtm-entry", rf"lkdtm: Performing direct entry {re.escape(crash)}", MUST)
        since = st.clock + DUR_BACKGROUND
        c = st.cpus[cpu]
        if crash == "HARDLOCKUP":
            self._make_stuck(c, Activity.HARDLOCKUP, "lkdtm HARDLOCKUP", since)
        elif crash == "SOFTLOCKUP":
            self._make_stuck(c, Activity.SOFTLOCKUP, "lkdtm SOFTLOCKUP", since)
        elif crash == "LOOP":
            if f.preempt:
                st.loads.append(Load(cpu, since, None, p.name, self._index))
                p.note("LOOP with CONFIG_PREEMPT: a preemptible busy task in the kernel")
            else:
                self._make_stuck(c, Activity.SOFTLOCKUP, "lkdtm LOOP (no preemption)", since)
        elif crash == "SMP_CALL_LOCKUP":
            others = [o for o in st.online() if o != cpu]
            if not others:
                p.report("lkdtm-fail", r"lkdtm: FAIL: no other online CPUs", MUST)
                return DUR_BACKGROUND
            target = others[0]                       # cpumask_any_but(): first online CPU but this one
            tc = st.cpus[target]
            if not tc.irqs_off:
                self._make_stuck(tc, Activity.HARDLOCKUP,
                                 "in __lkdtm_SMP_CALL_LOCKUP (cross-call handler, interrupts off)",
                                 since, in_hardirq=True)
                p.add_counter(CALL_ROW, target, Range(1, None))
            self._make_stuck(c, Activity.SOFTLOCKUP,
                             f"waiting in smp_call_function_single() for CPU {target}", since)
            c.csd_target = target
            c.csd_func = "__lkdtm_SMP_CALL_LOCKUP"
            if f.csd_lock_debug:
                # csd_lock_wait_toolong -> dump_cpu_task -> nmi_trigger_cpumask_backtrace
                # touches the soft-lockup watchdog while it waits
                extra = CSD_TIMEOUT
                if f.backtrace_ipi and not f.arch.reaches_irqs_off(NMI_BACKTRACE):
                    extra += CSD_DUMP_WAIT
                c.touch = since + extra
            st.hotplug_lock = f"lkdtm SMP_CALL_LOCKUP on CPU {cpu} holds cpus_read_lock()"
            p.note(f"CPU {target} (first online CPU other than {cpu}) spins in the cross-call "
                   f"handler with interrupts off; CPU {cpu} spins waiting for it with preemption off")
        elif crash == "PANIC":
            return DUR_BACKGROUND.union(self._panic(p, cpu, "dumptest"))
        elif crash == "BUG":
            p.report("bug", r"kernel BUG at drivers/misc/lkdtm/bugs\.c:\d+!", MUST)
            p.report("bug-die", r"Kernel BUG \[#\d+\]", MUST)
            return DUR_BACKGROUND.union(self._oops(p, cpu))
        elif crash == "EXCEPTION":
            p.report("exception", r"Unable to handle kernel NULL pointer dereference at virtual address 0+\b",
                     MUST)
            p.report("exception-die", r"Oops \[#\d+\]", MUST)
            return DUR_BACKGROUND.union(self._oops(p, cpu))
        elif crash == "WARNING":
            where = str(cpu) if pinned else r"\d+"
            p.report("warning", rf"WARNING: CPU: {where} PID: \d+ at drivers/misc/lkdtm/bugs\.c:\d+ "
                     r"lkdtm_WARNING", MUST)
        elif crash == "WARNING_MESSAGE":
            p.report("warning", r"Warning message trigger count: \d+", MUST)
        elif crash == "SPINLOCKUP":
            # "Must be called twice to trigger": the first call returns holding
            # lock_me_up, the second spins in spin_lock() (preemption off)
            if not st.spinlock_held:
                st.spinlock_held = True
                p.note("the first SPINLOCKUP takes lock_me_up and returns; a second one spins")
            else:
                self._make_stuck(c, Activity.SOFTLOCKUP, "lkdtm SPINLOCKUP (spinning on lock_me_up)", since)
        elif crash == "HUNG_TASK":
            h = f.hung_task_timeout
            if h:
                # kernel/hung_task.c: checked every timeout seconds
                st.timers.append((f"hung-task:{p.name}", r"INFO: task \S+:\d+ blocked for more than \d+ seconds\.",
                                  since.lo + h, since.hi + 2 * h + SLACK,
                                  "LKDTM HUNG_TASK sleeps uninterruptibly forever"))
        else:
            p.outcome = {UNMODELLED}
            p.note(f"LKDTM {crash} is not modelled")
        return DUR_BACKGROUND

    def _oops(self, p: Prediction, cpu: int) -> Span:
        """die() -> notify_die(DIE_OOPS): kgdb's die notifier enters kdb."""
        f = self.features
        if f.panic_on_oops:
            return self._panic(p, cpu, "Fatal exception")
        if f.kgdb_attached:
            p.note("arch/riscv/kernel/kgdb.c kgdb_riscv_notify(DIE_OOPS) enters kdb; the oops makes "
                   "it catastrophic (go twice)")
            d = self._kdb_session(p, cpu, "oops", [], False, leave=False, catastrophic=True)
            p.outcome = {OOPS, KDB_HELD}
            return d
        p.outcome = {OOPS}
        p.note("the oops kills the writer; the CPU goes back to what it was doing")
        return DUR_BACKGROUND

    def _panic(self, p: Prediction, cpu: int, message: str, leave_kdb: bool = False) -> Span:
        f, st = self.features, self.state
        p.report("panic", rf"Kernel panic - not syncing: {re.escape(message)}", MUST)
        d = Span(0.0, 0.0)
        in_kdb = f.kgdb_attached and f.panic_timeout == 0
        if in_kdb:
            # kernel/panic.c panic() -> kgdb_panic() -> kgdb_breakpoint()
            p.note("kgdb_panic(): with kgdboc and panic_timeout 0 the panic enters kdb first")
            d = self._kdb_session(p, cpu, "panic", [], True, leave=leave_kdb)
        if leave_kdb or not in_kdb:
            # panic_other_cpus_shutdown -> smp_send_stop (arch/riscv/kernel/smp.c)
            p.report("smp-stop", r"SMP: stopping secondary CPUs", MUST)
            others = [c for c in st.online() if c != cpu]
            stuck = [c for c in others if st.cpus[c].irqs_off and not f.arch.reaches_irqs_off(NMI_STOP)]
            d = d + Span(0.05, 0.5)
            if others and stuck:
                p.report("smp-stop-failed", rf"SMP: failed to stop secondary CPUs "
                         rf"{re.escape(cpulist.format([cpu] + stuck))}\b", MUST)
                d = d + Span(1.0, 1.0)
        p.outcome = {PANIC}
        st.wedged = f"the kernel panicked in step '{p.name}'"
        st.wedge_outcome = PANIC
        return d


# ==================================================================== merging
def _merge_into(p: Prediction, branches: list[Prediction]) -> None:
    """p := the union of alternative predictions (same step, other CPU)."""
    first = branches[0]
    p.outcome = set().union(*(b.outcome for b in branches))
    statuses = [b.status for b in branches]
    p.status = statuses[0] if all(s == statuses[0] for s in statuses) else one_of(s for s in statuses if s is not None)
    rows = set().union(*(b.counters for b in branches))
    p.counters = {}
    for row in rows:
        cpus = set().union(*(b.counters.get(row, {}) for b in branches))
        default = Range(0, 0) if row in EXACT_ROWS else Range(0, None)
        p.counters[row] = {}
        for c in cpus:
            r = None
            for b in branches:
                v = b.counters.get(row, {}).get(c, default)
                r = v if r is None else r.union(v)
            p.counters[row][c] = r
    if first.backtrace is not None:
        bts = [b.backtrace for b in branches if b.backtrace is not None]
        m = copy.deepcopy(bts[0])
        for bt in bts[1:]:
            m.sender |= bt.sender
            m.targets.update(bt.targets)
            for c, forms in bt.forms.items():
                m.forms[c] = m.forms.get(c, set()) | forms
            m.wait |= bt.wait
            m.swallowed = m.swallowed or bt.swallowed
            if bt.blocked_at is not None:
                m.blocked_at = bt.blocked_at
        p.backtrace = m
    if first.kdb is not None:
        ks = [b.kdb for b in branches if b.kdb is not None]
        m = copy.deepcopy(ks[0])
        for k in ks[1:]:
            m.cpu |= k.cpu
            m.available |= k.available
            m.printed = m.printed or k.printed
            m.unresponsive |= k.unresponsive
            m.roundup_timeout |= k.roundup_timeout
            m.go_refused |= k.go_refused
            m.resumed |= k.resumed
            m.current |= k.current
            m.lines = [ln for ln in m.lines if ln in k.lines]
        p.kdb = m
    # a report is certain only if every alternative makes it
    reports: dict[str, Report] = {}
    for b in branches:
        for r in b.reports:
            reports.setdefault(r.key, copy.deepcopy(r))
    for key, r in reports.items():
        if not all(any(x.key == key and x.when == MUST for x in b.reports) for b in branches):
            r.when = MAY
    p.reports = list(reports.values())
    for b in branches:
        for n in b.notes:
            p.note(n)


# ==================================================================== run
@dataclass
class Run:
    features: Features
    cpus: int
    predictions: list[Prediction]
    final: MachineState

    def prediction(self, name: str) -> Prediction:
        for p in self.predictions:
            if p.name == name:
                return p
        raise KeyError(name)

    def reports(self) -> list[Report]:
        """Every console report over the whole run: MUST if some step makes it certain."""
        out: dict[str, Report] = {}
        for p in self.predictions:
            for r in p.reports:
                if r.key in out:
                    if r.when == MUST:
                        out[r.key].when = MUST
                else:
                    out[r.key] = copy.deepcopy(r)
        return list(out.values())

    def claim_details(self) -> list[Claim]:
        out: list[Claim] = []
        for p in self.predictions:
            out.extend(p.claim_details())
        return out

    def claims(self) -> list[tuple[str, str, Any]]:
        return [c.as_tuple() for c in self.claim_details()]

    def _snapshot_index(self, label: str) -> int:
        for i, p in enumerate(self.predictions):
            if p.snapshot is not None and p.snapshot.label == label:
                return i
        raise KeyError(f"no snapshot labelled {label!r} (or it was not reached)")

    def between(self, before: str, after: str) -> dict[str, dict[int, Range]]:
        """Predicted change of each IPI row per CPU between two snapshots,
        for the CPUs with a column in both: the sum of the steps' own
        contributions (exact rows exact, noisy rows bounded)."""
        i, j = self._snapshot_index(before), self._snapshot_index(after)
        if j < i:
            raise ValueError(f"snapshot {after!r} comes before {before!r}")
        cpus = sorted(set(self.predictions[i].snapshot.columns) & set(self.predictions[j].snapshot.columns))
        out: dict[str, dict[int, Range]] = {}
        for row in self.features.ipi_rows():
            default = Range(0, 0) if row in EXACT_ROWS else Range(0, None)
            out[row] = {}
            for c in cpus:
                total = Range(0, 0)
                for p in self.predictions[i + 1:j]:
                    if c in p.comparable_cpus:
                        total = total + p.counters.get(row, {}).get(c, default)
                    elif row not in EXACT_ROWS:
                        total = total + Range(0, None)
                if row not in EXACT_ROWS:
                    # Noisy rows move with any activity (the console's own
                    # commands send function-call and reschedule IPIs): only
                    # the lower bound is a prediction.
                    total = Range(total.lo, None)
                out[row][c] = total
        return out

    def to_json(self) -> dict:
        return {"features": self.features.to_json(), "cpus": self.cpus,
                "steps": [p.to_json() for p in self.predictions],
                "reports": [r.to_json() for r in self.reports()]}


def predict(steps: Iterable[Any], features: Features | None = None, cpus: int = 4,
            reboot: bool = False) -> Run:
    """Run the model over steps (repeat steps are expanded)."""
    return Model(features, cpus, reboot=reboot).run(steps)
