"""Kernel actions that several step types share: sysrq-l's backtrace round
(backtrace_round.py), a kdb session (kdb_roundup.py), LKDTM crash points,
oops and panic."""
from __future__ import annotations

import re

from harness.guest import vcpu_probe as loc
from harness.model.backtrace_round import BacktraceRound
from harness.model.expect import Range
from harness.model.features import CALL_ROW, EXACT_ROWS, NMI_BACKTRACE, NMI_STOP
from harness.model.kdb_roundup import KdbRoundup
from harness.model.prediction import KDB_HELD, MAY, MUST, NEVER, OOPS, PANIC, UNMODELLED, Prediction
from harness.model.state import Activity, Load, Span
from harness.model.timing import CSD_DUMP_WAIT, CSD_TIMEOUT, DUR_BACKGROUND, SLACK
from harness.parsers import cpulist


class Actions(BacktraceRound, KdbRoundup):
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

    def _smp_send_stop(self, p: Prediction, cpu: int, probe: bool) -> Span:
        """panic_other_cpus_shutdown -> smp_send_stop (arch/*/kernel/smp.c).
        With probe, where each vCPU is once the panic notifiers run."""
        f, st = self.features, self.state
        others = [c for c in st.online() if c != cpu]
        masked = [c for c in others if st.cpus[c].irqs_off]
        retried = [c for c in masked if f.arch.reaches_irqs_off(NMI_STOP)]
        stuck = [c for c in masked if c not in retried]
        d = Span(0.05, 0.5)
        if others:
            # smp_send_stop() prints only when another CPU is online
            # (num_online_cpus() > 1); each target runs ipi_stop().
            p.expect_console("smp-stop", r"SMP: stopping secondary CPUs", MUST)
        if stuck:
            named = [cpu] + stuck if f.arch.stop_failed_names_sender else stuck
            # The sender waits USEC_PER_SEC x udelay(1): measured 5.3-10.5 s
            # of guest time under TCG (docs/ipi-types.md, CPU stop).
            p.expect_console("smp-stop-failed", rf"SMP: failed to stop secondary CPUs "
                             rf"{re.escape(cpulist.format(named))}\s*$", MUST)
            d = d + Span(1.0, 11.0)
        elif retried:
            # arch/arm64/kernel/smp.c: after the one-second wait the CPUs still
            # online get IPI_CPU_STOP_NMI and 10 ms to take it. They do take it
            # (the probe below checks), but under TCG a vCPU answers only when
            # the host runs its thread, and with more busy vCPU threads than
            # host cores that was later than 10 ms in 1 of 35 runs at -j 2
            # (docs/arm64.md, "The stop pseudo-NMI's 10 ms"): the line is then
            # printed although the stop succeeded a moment later.
            p.expect_console("smp-stop-nmi", rf"SMP: retry stop with NMI for CPUs "
                             rf"{re.escape(cpulist.format(retried))}\s*$", MUST)
            p.expect_console("smp-stop-failed", rf"SMP: failed to stop secondary CPUs "
                             rf"{re.escape(cpulist.format(retried))}\s*$", MAY,
                             "the kernel gives the stop pseudo-NMI 10 ms; a vCPU thread the host "
                             "has not scheduled within them answers later", basis="measured")
            d = d + Span(1.0, 11.0)
        else:
            # Every other CPU takes IPI_CPU_STOP: the wait ends at once.
            p.expect_console("smp-stop-failed", r"SMP: failed to stop secondary CPUs", NEVER,
                             "every other online CPU has interrupts on and takes the stop IPI")
        if probe:
            p.vcpus = {n: ({loc.CPU_STOP} if n in others and n not in stuck
                           else {loc.PANIC, loc.KERNEL} if n == cpu else self.locations(n))
                       for n in range(st.ncpus)}
        return d

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

    def panic(self, p: Prediction, cpu: int, message: str, leave_kdb: bool = False,
              probe: bool = False) -> Span:
        f, st = self.features, self.state
        p.expect_console("panic", rf"Kernel panic - not syncing: {re.escape(message)}", MUST)
        d = Span(0.0, 0.0)
        in_kdb = f.kgdb_attached and f.panic_timeout == 0
        if in_kdb:
            # kernel/panic.c panic() -> kgdb_panic() -> kgdb_breakpoint()
            p.note("kgdb_panic(): with kgdboc and panic_timeout 0 the panic enters kdb first")
            d = self.kdb_session(p, cpu, "panic", [], True, leave=leave_kdb)
        if leave_kdb or not in_kdb:
            d = d + self._smp_send_stop(p, cpu, probe)
        p.outcome = {PANIC}
        st.wedged = f"the kernel panicked in step '{p.name}'"
        st.wedge_outcome = PANIC
        return d
