"""A kdb session: kgdb_cpu_enter() on the entry CPU, the round-up of the
others (the KGDB round-up IPI, 983f12149942, or the generic cross call),
the commands typed, then go (kernel/debug/kdb/kdb_main.c kdb_go)."""
from __future__ import annotations

import itertools
import math

from harness.guest import vcpu_probe as loc
from harness.model import kdb_cpus as kdbfmt
from harness.model.expect import Range
from harness.model.features import CALL_ROW, KGDB_ROW, NMI_KGDB_ROUNDUP
from harness.model.prediction import KDB_HELD, MAY, MUST, OK, KdbPrediction, Prediction
from harness.model.state import Activity, Span
from harness.model.timing import DUR_KDB, DUR_KDB_TIMEOUT
from harness.parsers import cpulist


class KdbRoundup:
    """A kdb session and its round-up of the other CPUs (one of the kernel
    actions Actions combines)."""

    def kdb_session(self, p: Prediction, init: int, via: str, commands: list[str], go_twice: bool,
                     leave: bool, catastrophic: bool = False) -> Span:
        """kgdb_cpu_enter() on init, round-up, commands, then go."""
        t = self.state.clock
        options, certain, maybe, mute = self._roundup_reach(init, t)
        available, unresponsive = self._available_cpus(p, options, maybe, mute)
        catastrophic_opts = {catastrophic or bool(u) for u in unresponsive}
        timeout_opts = {bool(u) for u in unresponsive}
        self._roundup_counters(p, certain, maybe, mute)
        current, printed, lines = self._kdb_commands(p, init, commands, certain, mute)
        go_refused, resumed = _go(init, current, leave, go_twice, catastrophic_opts, lines)
        p.kdb = KdbPrediction({init}, via, available, printed, unresponsive, timeout_opts,
                              go_refused, resumed, lines, {current})
        if p.args.get("probe"):
            self._kdb_probe(p, init, certain, maybe)
        _kdb_console(p, init, via, timeout_opts, go_refused, leave and current == init)
        self._roundup_notes(p, mute, maybe)
        d = _kdb_duration(len(commands), timeout_opts)
        self._kdb_exit(p, t, d, resumed, [init] + certain + maybe)
        return d

    def _roundup_reach(self, init: int, t: Span) -> tuple[list[set[str]], list[int], list[int], list[int]]:
        """Each CPU's possible kdb state characters, and the CPUs that
        certainly, maybe, and never answer the round-up."""
        f, st = self.features, self.state
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
        return options, certain, maybe, mute

    def _available_cpus(self, p: Prediction, options: list[set[str]], maybe: list[int],
                        mute: list[int]) -> tuple[set[str], set[tuple[int, ...]]]:
        """The possible 'Available cpus' strings and sets of CPUs that did not round up."""
        combos = math.prod(len(o) for o in options)
        available: set[str] = set()
        unresponsive: set[tuple[int, ...]] = set()
        if combos <= 4096:
            for chars in itertools.product(*options):
                available.add(kdbfmt.available_cpus(chars, self.features.nr_cpus))
                unresponsive.add(tuple(i for i, c in enumerate(chars) if c == kdbfmt.UNRESPONSIVE))
        else:
            p.note("too many possible CPU states to list the 'Available cpus' strings")
            for extra in itertools.product([False, True], repeat=len(maybe)):
                unresponsive.add(tuple(sorted(mute + [m for m, on in zip(maybe, extra) if on])))
        return available, unresponsive

    def _roundup_counters(self, p: Prediction, certain: list[int], maybe: list[int], mute: list[int]) -> None:
        # counters: the round-up IPI (983f12149942) or smp_call_function_single_async
        if self.features.kgdb_roundup_ipi:
            for n in certain:
                p.add_counter(KGDB_ROW, n, Range(1, 1))
            for n in maybe:
                p.add_counter(KGDB_ROW, n, Range(0, 1))
        else:
            for n in certain:
                p.add_counter(CALL_ROW, n, Range(1, None))
            for n in mute:
                self.state.rounding_up.add(n)

    def _kdb_commands(self, p: Prediction, init: int, commands: list[str], certain: list[int],
                      mute: list[int]) -> tuple[int, bool, list[str]]:
        """(the CPU kdb is on after the commands, whether one printed the
        Available cpus line, the other lines they print)."""
        st = self.state
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
        return current, printed, lines

    def _kdb_probe(self, p: Prediction, init: int, certain: list[int], maybe: list[int]) -> None:
        # Sampled while kdb waits for input: the entry CPU polls the
        # console, the CPUs that answered the round-up spin in
        # kgdb_cpu_enter(), the others stay where they were.
        st = self.state
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

    def _roundup_notes(self, p: Prediction, mute: list[int], maybe: list[int]) -> None:
        if mute:
            p.note(f"CPU(s) {cpulist.format(mute)} cannot take the round-up "
                   + ("IPI" if self.features.kgdb_roundup_ipi else "cross call") + " with interrupts off: shown (D)")
        if maybe:
            p.note(f"CPU(s) {cpulist.format(maybe)} may be busy in a detector's backtrace with "
                   "interrupts off and miss the 1 s round-up")

    def _kdb_exit(self, p: Prediction, t: Span, d: Span, resumed: set[bool], leaving: list[int]) -> None:
        """The machine stays held in kdb, or leaves it: the CPUs in
        kgdb_cpu_enter() (leaving) touch their watchdogs on the way out."""
        st = self.state
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
            for n in leaving:
                cpu = st.cpus[n]
                if cpu.activity is Activity.SOFTLOCKUP:
                    cpu.touch = end


def _go(init: int, current: int, leave: bool, go_twice: bool, catastrophic_opts: set[bool],
        lines: list[str]) -> tuple[set[bool], set[bool]]:
    """(whether go may be refused, whether the machine may resume): go
    (kdb_main.c kdb_go) runs only on the entry CPU and asks a second time
    after a catastrophic entry. Its refusal line goes to lines."""
    if current != init:
        go_refused, resumed = {True}, {False}
        lines.append(f'go must execute on the entry cpu, please use "cpu {init}" and then execute go')
    elif not leave:
        go_refused, resumed = catastrophic_opts, {False}
    else:
        go_refused = catastrophic_opts
        resumed = {True} if go_twice else {not c for c in catastrophic_opts}
    return go_refused, resumed


def _kdb_console(p: Prediction, init: int, via: str, timeout_opts: set[bool], go_refused: set[bool],
                 go_typed: bool) -> None:
    """The console lines of the session: the entry banner, the round-up
    timeout, and go's request to type it twice (go_typed: go on the entry CPU)."""
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
    if go_typed:
        if go_refused == {True}:
            p.expect_console("kdb-go-twice", r"type go a second time if you really want to continue", MUST,
                     basis="both")
        elif True in go_refused:
            p.expect_console("kdb-go-twice", r"type go a second time if you really want to continue", MAY)


def _kdb_duration(ncommands: int, timeout_opts: set[bool]) -> Span:
    """How long the session takes: the commands, and the round-up's timeout if it may expire."""
    d = DUR_KDB + Span(0.0, 0.1 * ncommands)
    if timeout_opts == {True}:
        d = d + DUR_KDB_TIMEOUT
    elif True in timeout_opts:
        d = d.union(d + DUR_KDB_TIMEOUT)
    return d
