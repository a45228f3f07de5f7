"""Kernel actions that several step types share: sysrq-l's backtrace round,
a kdb session, LKDTM crash points, oops and panic."""
from __future__ import annotations

import itertools
import math
import re

from harness.guest import vcpu_probe as loc
from harness.model import kdb_cpus as kdbfmt
from harness.model.expect import Range
from harness.model.features import (
    BACKTRACE_ROW,
    CALL_ROW,
    EXACT_ROWS,
    KGDB_ROW,
    NMI_BACKTRACE,
    NMI_KGDB_ROUNDUP,
    NMI_STOP,
)
from harness.model.prediction import (
    KDB_HELD,
    MAY,
    MUST,
    NEVER,
    OK,
    OOPS,
    PANIC,
    UNMODELLED,
    BacktracePrediction,
    KdbPrediction,
    Prediction,
)
from harness.model.state import Activity, Load, Span
from harness.model.timing import (
    CSD_DUMP_WAIT,
    CSD_TIMEOUT,
    DUR_BACKGROUND,
    DUR_BT_WAIT,
    DUR_KDB,
    DUR_KDB_TIMEOUT,
    DUR_SYSRQ,
    SLACK,
)
from harness.parsers import cpulist
from harness.parsers.backtrace import FALLBACK, FALLBACK_IDLE, FULL


class Actions:
    """Kernel actions several step types share: sysrq-l's backtrace round,
    a kdb session, LKDTM crash points, oops and panic."""

    def opaque(self, p: Prediction) -> None:
        """A shell command is opaque: it may change no CPU state the model
        tracks, but it may move any IPI counter (e.g. it writes sysrq l)."""
        p.note("shell commands are opaque to the model: it assumes they change no CPU state, "
               "and claims nothing about IPI counters while they run")
        for row in EXACT_ROWS:
            for n in self.state.online():
                p.counters.setdefault(row, {})[n] = Range(0, None)

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

    def sysrq_l(self, p: Prediction, sender: int, via: str) -> Span:
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
                p.expect_console(f"sending:{sender}", rf"Sending NMI from CPU {sender} to CPUs "
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
                for r in p.console_lines:
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
        p.expect_console(f"fallback:{sender}", rf"(?m)\bCPU{sender}:\s*$", MUST, basis="both")
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
            self.make_stuck(cpu, Activity.SOFTLOCKUP,
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

    def kdb_session(self, p: Prediction, init: int, via: str, commands: list[str], go_twice: bool,
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
                    p.vcpus[n] = {loc.KGDB_ROUNDUP} | self.locations(n)
                else:
                    p.vcpus[n] = self.locations(n)
        if via == "oops":
            p.expect_console(f"kdb-enter:{init}", rf"Entering kdb \(current=0x[0-9a-f]+, pid \d+\) on processor {init} ",
                     MUST)
        else:
            # The source reads as "Keyboard Entry" for sysrq g; 6.12.107 on
            # RISC-V printed "NonMaskable Interrupt @ <arch_kgdb_breakpoint>"
            # in every measured run, so both are accepted.
            p.expect_console(f"kdb-enter:{init}", rf"Entering kdb \(current=0x[0-9a-f]+, pid \d+\) on processor {init} "
                     r"due to (?:Keyboard Entry|NonMaskable Interrupt @ 0x[0-9a-f]+)", MUST, basis="both")
        if timeout_opts == {True}:
            p.expect_console("kdb-timeout", r"Timed out waiting for secondary CPUs\.", MUST)
        elif True in timeout_opts:
            p.expect_console("kdb-timeout", r"Timed out waiting for secondary CPUs\.", MAY)
        if leave and current == init:
            if go_refused == {True}:
                p.expect_console("kdb-go-twice", r"type go a second time if you really want to continue", MUST,
                         basis="both")
            elif True in go_refused:
                p.expect_console("kdb-go-twice", r"type go a second time if you really want to continue", MAY)
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

    def locations(self, n: int) -> set[str]:
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

    def lkdtm(self, p: Prediction, crash: str, cpu: int, pinned: bool = True) -> Span:
        f, st = self.features, self.state
        p.expect_console("lkdtm-entry", rf"lkdtm: Performing direct entry {re.escape(crash)}", MUST)
        since = st.clock + DUR_BACKGROUND
        c = st.cpus[cpu]
        if crash == "HARDLOCKUP":
            self.make_stuck(c, Activity.HARDLOCKUP, "lkdtm HARDLOCKUP", since)
        elif crash == "SOFTLOCKUP":
            self.make_stuck(c, Activity.SOFTLOCKUP, "lkdtm SOFTLOCKUP", since)
        elif crash == "LOOP":
            if f.preempt:
                st.loads.append(Load(cpu, since, None, p.name, self._index))
                p.note("LOOP with CONFIG_PREEMPT: a preemptible busy task in the kernel")
            else:
                self.make_stuck(c, Activity.SOFTLOCKUP, "lkdtm LOOP (no preemption)", since)
        elif crash == "SMP_CALL_LOCKUP":
            others = [o for o in st.online() if o != cpu]
            if not others:
                p.expect_console("lkdtm-fail", r"lkdtm: FAIL: no other online CPUs", MUST)
                return DUR_BACKGROUND
            target = others[0]                       # cpumask_any_but(): first online CPU but this one
            tc = st.cpus[target]
            if not tc.irqs_off:
                self.make_stuck(tc, Activity.HARDLOCKUP,
                                 "in __lkdtm_SMP_CALL_LOCKUP (cross-call handler, interrupts off)",
                                 since, in_hardirq=True)
                p.add_counter(CALL_ROW, target, Range(1, None))
            self.make_stuck(c, Activity.SOFTLOCKUP,
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
            return DUR_BACKGROUND.union(self.panic(p, cpu, "dumptest"))
        elif crash == "BUG":
            p.expect_console("bug", r"kernel BUG at drivers/misc/lkdtm/bugs\.c:\d+!", MUST)
            p.expect_console("bug-die", r"Kernel BUG \[#\d+\]", MUST)
            return DUR_BACKGROUND.union(self.oops(p, cpu))
        elif crash == "EXCEPTION":
            p.expect_console("exception", r"Unable to handle kernel NULL pointer dereference at virtual address 0+\b",
                     MUST)
            p.expect_console("exception-die", r"Oops \[#\d+\]", MUST)
            return DUR_BACKGROUND.union(self.oops(p, cpu))
        elif crash == "WARNING":
            where = str(cpu) if pinned else r"\d+"
            p.expect_console("warning", rf"WARNING: CPU: {where} PID: \d+ at drivers/misc/lkdtm/bugs\.c:\d+ "
                     r"lkdtm_WARNING", MUST)
        elif crash == "WARNING_MESSAGE":
            p.expect_console("warning", r"Warning message trigger count: \d+", MUST)
        elif crash == "SPINLOCKUP":
            # "Must be called twice to trigger": the first call returns holding
            # lock_me_up, the second spins in spin_lock() (preemption off)
            if not st.spinlock_held:
                st.spinlock_held = True
                p.note("the first SPINLOCKUP takes lock_me_up and returns; a second one spins")
            else:
                self.make_stuck(c, Activity.SOFTLOCKUP, "lkdtm SPINLOCKUP (spinning on lock_me_up)", since)
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

    def oops(self, p: Prediction, cpu: int) -> Span:
        """die() -> notify_die(DIE_OOPS): kgdb's die notifier enters kdb."""
        f = self.features
        if f.panic_on_oops:
            return self.panic(p, cpu, "Fatal exception")
        if f.kgdb_attached:
            p.note("arch/riscv/kernel/kgdb.c kgdb_riscv_notify(DIE_OOPS) enters kdb; the oops makes "
                   "it catastrophic (go twice)")
            d = self.kdb_session(p, cpu, "oops", [], False, leave=False, catastrophic=True)
            p.outcome = {OOPS, KDB_HELD}
            return d
        p.outcome = {OOPS}
        p.note("the oops kills the writer; the CPU goes back to what it was doing")
        return DUR_BACKGROUND

    def panic(self, p: Prediction, cpu: int, message: str, leave_kdb: bool = False) -> Span:
        f, st = self.features, self.state
        p.expect_console("panic", rf"Kernel panic - not syncing: {re.escape(message)}", MUST)
        d = Span(0.0, 0.0)
        in_kdb = f.kgdb_attached and f.panic_timeout == 0
        if in_kdb:
            # kernel/panic.c panic() -> kgdb_panic() -> kgdb_breakpoint()
            p.note("kgdb_panic(): with kgdboc and panic_timeout 0 the panic enters kdb first")
            d = self.kdb_session(p, cpu, "panic", [], True, leave=leave_kdb)
        if leave_kdb or not in_kdb:
            # panic_other_cpus_shutdown -> smp_send_stop (arch/riscv/kernel/smp.c)
            others = [c for c in st.online() if c != cpu]
            stuck = [c for c in others if st.cpus[c].irqs_off and not f.arch.reaches_irqs_off(NMI_STOP)]
            d = d + Span(0.05, 0.5)
            if others:
                # smp_send_stop() prints only when another CPU is online
                # (num_online_cpus() > 1); each target runs ipi_stop().
                p.expect_console("smp-stop", r"SMP: stopping secondary CPUs", MUST)
            if others and stuck:
                # The sender waits USEC_PER_SEC x udelay(1): measured 5.3-10.5 s
                # of guest time under TCG (docs/ipi-types.md, CPU stop).
                p.expect_console("smp-stop-failed", rf"SMP: failed to stop secondary CPUs "
                         rf"{re.escape(cpulist.format([cpu] + stuck))}\b", MUST)
                d = d + Span(1.0, 11.0)
            else:
                # Every other CPU takes IPI_CPU_STOP: the wait ends at once.
                p.expect_console("smp-stop-failed", r"SMP: failed to stop secondary CPUs", NEVER,
                                 "every other online CPU has interrupts on and takes the stop IPI")
        p.outcome = {PANIC}
        st.wedged = f"the kernel panicked in step '{p.name}'"
        st.wedge_outcome = PANIC
        return d
