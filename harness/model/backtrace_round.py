"""sysrq-l's backtrace round: lib/nmi_backtrace.c's IPI round when the
kernel has the backtrace IPI, drivers/tty/sysrq.c's function-call fallback
(showacpu on every other CPU) when it has not."""
from __future__ import annotations

import re

from harness.model.expect import Range
from harness.model.features import BACKTRACE_ROW, CALL_ROW, NMI_BACKTRACE
from harness.model.prediction import MAY, MUST, BacktracePrediction, Prediction
from harness.model.state import Activity, Span
from harness.model.timing import DUR_BT_WAIT, DUR_SYSRQ
from harness.parsers import cpulist
from harness.parsers.backtrace import FALLBACK, FALLBACK_IDLE, FULL


class BacktraceRound:
    """sysrq-l's backtrace round, by IPI or by the function-call fallback
    (one of the kernel actions Actions combines)."""

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
            return self._sysrq_ipi(p, sender, via, t, targets, forms)
        return self._sysrq_fallback(p, sender, t, targets, forms)

    def _sysrq_ipi(self, p: Prediction, sender: int, via: str, t: Span, targets: list[int],
                   forms: dict[int, set[str | None]]) -> Span:
        """The round by backtrace IPI; the sender dumps its own stack."""
        f, st = self.features, self.state
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
            _swallowed(p, bt, sender, targets, mute, flag)
        p.backtrace = bt
        d = DUR_BT_WAIT if True in bt.wait else DUR_SYSRQ
        if len(bt.wait) > 1:
            d = DUR_SYSRQ.union(DUR_BT_WAIT)
        if via == "break" and True in bt.wait:
            st.blackouts.append((t.lo, d.hi))      # the wait runs in the UART interrupt
        return d

    def _sysrq_fallback(self, p: Prediction, sender: int, t: Span, targets: list[int],
                        forms: dict[int, set[str | None]]) -> Span:
        """The round without the backtrace IPI: showacpu by cross call."""
        st = self.state
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
        order = sorted(targets)
        blocked_at, maybe_block = self._showacpu_calls(p, sender, t, order, forms)
        bt = BacktracePrediction("fallback", {sender}, {sender: []}, forms, {False})
        if blocked_at is not None:
            bt.blocked_at = blocked_at
            self._csd_blocked(p, sender, blocked_at, t, order, forms)
        elif maybe_block:
            p.note("an earlier fallback sysrq-l may have left a csd locked: this one may block")
        p.backtrace = bt
        return DUR_SYSRQ

    def _showacpu_calls(self, p: Prediction, sender: int, t: Span, order: list[int],
                        forms: dict[int, set[str | None]]) -> tuple[int | None, bool]:
        """smp_call_function(showacpu) in CPU order: (the CPU whose csd is
        still locked from an earlier round, where it blocks; whether an
        earlier csd may still be locked)."""
        st = self.state
        maybe_block = False
        for c in order:
            certain = st.pending_csd.get((sender, c))
            if certain is True:
                return c, maybe_block
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
        return None, maybe_block

    def _csd_blocked(self, p: Prediction, sender: int, blocked_at: int, t: Span, order: list[int],
                     forms: dict[int, set[str | None]]) -> None:
        """The sender's kworker spins in csd_lock() for CPU blocked_at: no
        CPU from there on is asked."""
        st = self.state
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


def _swallowed(p: Prediction, bt: BacktracePrediction, sender: int, targets: list[int],
               mute: list[int], flag: list[str]) -> None:
    """Another CPU backtrace may be in progress: this round may print nothing."""
    # test_and_set_bit(0, &backtrace_flag): a trigger already in
    # progress makes this one return without printing anything.
    bt.swallowed = True
    forms = bt.forms
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
