"""Kernel reports (panic, oops, BUG, WARNING, lockups, RCU stalls, hung
tasks, CSD-lock timeouts, CPU hotplug failures, LKDTM's own messages) with syzkaller-style
titles: addresses, offsets and numbers are left out, so the same bug gets
the same title in every run (cf. syzkaller pkg/report).

Everything is table-driven (the tables are in report_rules.py): RULES
says how a report starts and how its title is made, SKIP which functions
are never to blame (printing, trap and IRQ entry, the detectors
themselves, LKDTM's dispatch, the syscall path). A report's body is the lines after its first one that look like
part of a report (registers, frames, task lines, detector details), in
the same printk caller stream; when the report sends a backtrace IPI
("Sending NMI from CPU x to CPUs y"), the answering CPUs' streams count
too."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from harness.parsers import cpulist, klog
from harness.parsers.console_lines import Line
from harness.parsers.klog import Frame
from harness.parsers.report_rules import (
    BUG,
    CPU_HOTPLUG,
    CSD_LOCK,
    GPF,
    HARD_LOCKUP,
    HUNG_TASK,
    KASAN,
    KERNEL_BUG,
    KEYWORDS,
    KFENCE,
    KMEMLEAK,
    LKDTM,
    LKDTM_FAIL,
    LOCKDEP,
    OOPS,
    PANIC,
    PR_FMT,
    RCU_STALL,
    REFCOUNT,
    RULES,
    SKIP,
    SLEEP_IN_ATOMIC,
    SOFT_LOCKUP,
    UBSAN,
    WARNING,
    WEAK,
    Rule,
    function_name,
    is_body,
    normalise,
)

if TYPE_CHECKING:
    from harness.parsers.symbolize import SystemMap

# The report types, the tables and the title helpers are report_rules.py's;
# their users know them as reports.PANIC, reports.SKIP, reports.normalise ...
__all__ = ["PANIC", "OOPS", "KERNEL_BUG", "BUG", "WARNING", "SOFT_LOCKUP", "HARD_LOCKUP", "RCU_STALL",
           "HUNG_TASK", "CSD_LOCK", "LKDTM", "LKDTM_FAIL", "CPU_HOTPLUG", "KASAN", "KFENCE", "UBSAN", "LOCKDEP",
           "REFCOUNT", "SLEEP_IN_ATOMIC", "KMEMLEAK", "GPF", "Rule", "RULES", "SKIP", "WEAK", "normalise",
           "function_name", "Report", "MAX_REPORTS", "parse", "titles"]

# A report's lines come close together; a body-like line this far after
# the last one in the stream belongs to something else.
_MAX_GAP = 200
# Reports open at a time (one per printk stream at most, in real logs).
_MAX_OPEN = 16
# Reports kept; more come only from a corrupted log.
MAX_REPORTS = 1000
# Dumps inside a report of something other than the culprit: the RCU
# grace-period kthread that a stall starves.
_NOT_GUILTY = ("rcu: RCU grace-period kthread stack dump", "rcu: Stack dump where RCU GP kthread",
               "rcu: RCU GP kthread last ran on offline CPU")
_END = ("---[ end trace", "---[ end Kernel panic")
_CUT_HERE = "------------[ cut here ]------------"
_KDB_PANIC = "PANIC: "


@dataclass
class Report:
    type: str
    title: str
    first_line: int
    last_line: int
    cpu: int | None = None
    guilty: str | None = None           # function name as it goes into the title
    guilty_frame: str | None = None     # the frame as the kernel printed it
    caller: str | None = None
    corrupted: bool = False
    problems: list[str] = field(default_factory=list)
    details: dict[str, object] = field(default_factory=dict)

    def text(self, log: str | list[Line]) -> str:
        """The report's lines (printk prefixes removed) from the parsed log."""
        lines = klog.lines_of(log)
        return "\n".join(ln.text for ln in lines[self.first_line - 1:self.last_line])

    def to_json(self) -> dict:
        return {"type": self.type, "title": self.title, "cpu": self.cpu, "guilty": self.guilty,
                "guilty_frame": self.guilty_frame, "lines": [self.first_line, self.last_line],
                "caller": self.caller, "corrupted": self.corrupted, "problems": list(self.problems),
                "details": dict(self.details)}


@dataclass
class _Open:
    rule: Rule
    match: re.Match[str]
    report: Report
    streams: set[str | None]
    # (symbol, exact) in print order: exact for an epc, not for return addresses.
    candidates: list[tuple[Frame | str, bool]] = field(default_factory=list)
    primary: str | None = None          # the stream of the first line
    task_cpu: int | None = None
    frames: int = 0
    ended: bool = False
    exact_next: bool = False            # the next frame is an epc after a regs dump
    collect: bool = True                # frames still count for the guilty frame


class _ReportParser:
    def __init__(self, mode: str, symbols: "SystemMap | None") -> None:
        self.mode = mode
        self.symbols = symbols
        self.open: list[_Open] = []
        self.done: list[Report] = []
        self.cut_here: dict[str | None, int] = {}       # stream -> line number

    def feed(self, line: Line) -> None:
        if len(line.text) > klog.MAX_LINE:
            return
        if line.timestamp is None and line.text.startswith(_KDB_PANIC):
            self.kdb_panic(line)
            return
        if not klog.is_kernel(line, self.mode):
            return
        msg = line.text.strip()
        if not msg:
            return
        stream = line.caller if self.mode == klog.CALLER else None
        if msg == _CUT_HERE:
            self.cut_here[stream] = line.number
            return
        if self.start(line, msg, stream):
            return
        for rep in list(self.open):
            self.extend(rep, line, msg, stream)

    def start(self, line: Line, msg: str, stream: str | None) -> bool:
        if not any(k in msg for k in KEYWORDS):
            return False
        core = msg
        for prefix in PR_FMT:
            if core.startswith(prefix):
                core = core[len(prefix):]
                break
        for rule in RULES:
            m = rule.pattern.match(core)
            if m is None:
                continue
            if rule.joins:
                host = next((o for o in reversed(self.open)
                             if o.rule.type in rule.joins and not o.report.details.get("die")
                             and (stream in o.streams or self._announced(o, line))), None)
                if host is not None:
                    host.report.details["die"] = normalise(msg)
                    host.report.last_line = line.number
                    host.streams.add(stream)
                    return True
            self.begin(rule, m, line, stream)
            return True
        return False

    @staticmethod
    def _announced(o: _Open, line: Line) -> bool:
        """A refcount_t line printed by the task, then its WARN printed from
        the trap handler in another printk stream (RISC-V: [T61] then [C1]):
        the WARN continues it when it comes right after and nothing else has."""
        return o.rule.type == REFCOUNT and o.frames == 0 and line.number - o.report.last_line <= 4

    def kdb_panic(self, line: Line) -> None:
        """kdb entered from panic() prints "PANIC: <message>" itself; the
        printk lines of the panic may never reach the console (a BUG in the
        trap handler on RISC-V), so this line can be all there is."""
        message = normalise(line.text[len(_KDB_PANIC):].strip())
        title = "kernel panic: " + message
        if any(r.title == title for r in self.done) or any(
                o.report.title == title or (o.rule.type == PANIC and normalise(
                    o.match.group(1)) == message) for o in self.open):
            return
        if len(self.done) < MAX_REPORTS:
            self.done.append(Report(PANIC, title, line.number, line.number, details={"via": "kdb"}))

    def begin(self, rule: Rule, m: re.Match[str], line: Line, stream: str | None) -> None:
        # A new report in a stream ends the one before it there (e.g. the
        # panic that follows an oops in interrupt context).
        for o in [o for o in self.open if stream in o.streams]:
            if o.report.first_line < line.number and not o.rule.single_line:
                self.finish(o)
        first = line.number
        cut = self.cut_here.pop(stream, None)
        if cut is not None and line.number - cut <= 3 and rule.type in (WARNING, KERNEL_BUG):
            first = cut
        rep = Report(rule.type, "", first, line.number, caller=line.caller)
        if rule.cpu_group is not None:
            rep.cpu = int(m.group(rule.cpu_group))
        elif line.caller_cpu is not None:
            rep.cpu = line.caller_cpu
        o = _Open(rule, m, rep, {stream}, primary=stream)
        if rule.guilty_group is not None:
            o.candidates.append((m.group(rule.guilty_group), True))
        if rule.type == HUNG_TASK:
            rep.cpu = None      # a blocked task runs on no CPU
        if rule.single_line:
            self.finish(o)
            return
        if len(self.open) >= _MAX_OPEN:
            self.finish(self.open[0])
        self.open.append(o)

    def extend(self, o: _Open, line: Line, msg: str, stream: str | None) -> None:
        if stream not in o.streams:
            return
        if line.number - o.report.last_line > _MAX_GAP:
            self.finish(o)
            return
        if not is_body(msg):
            if stream == o.primary:
                self.finish(o)
            else:
                o.streams.discard(stream)
            return
        rep = o.report
        rep.last_line = line.number
        if msg.startswith(_END):
            self.finish(o)
            return
        if msg.startswith(_NOT_GUILTY):
            o.collect = False
        if not o.collect:
            return
        if msg.startswith("Sending NMI from CPU ") and msg.endswith(":"):
            cpus = klog.cpu_list(msg.rpartition(" to CPUs ")[2][:-1])
            for cpu in cpus or []:
                o.streams.add(f"C{cpu}")
            if cpus:
                rep.details.setdefault("backtrace_targets", cpulist.format(cpus))
            return
        if frame := klog.parse_frame(msg):
            o.frames += 1
            o.candidates.append((frame, o.exact_next))
            o.exact_next = False
            return
        if sym := klog.symbolic_register(msg):
            if sym[0] == klog.PC:
                o.candidates.append((sym[1], True))
                rep.details.setdefault("pc", sym[1])
            else:
                # The caller of a leaf function, which the unwinder skips.
                o.candidates.append((sym[1], False))
            return
        if msg.startswith("status: "):
            # show_regs prints the epc frame first after the registers.
            o.exact_next = True
            return
        if task := klog.parse_task_line(msg):
            if o.task_cpu is None:
                o.task_cpu = task.cpu
                rep.details.setdefault("task", f"{task.comm}:{task.pid}")
            return
        if msg.startswith("rcu: ") and o.rule.type == RCU_STALL and "stalled" not in rep.details:
            body = msg[5:].strip()
            cpu, dash, _ = body.partition("-")
            stalled = klog.small_int(cpu, 5) if dash else None
            if stalled is not None:
                rep.details["stalled"] = stalled

    def finish(self, o: _Open) -> None:
        if o in self.open:
            self.open.remove(o)
        if o.ended:
            return
        o.ended = True
        rep = o.report
        rule = o.rule
        if rule.type == RCU_STALL and isinstance(rep.details.get("stalled"), int):
            rep.cpu = rep.details["stalled"]    # type: ignore[assignment]
        elif rep.cpu is None and rule.type != HUNG_TASK and o.task_cpu is not None:
            rep.cpu = o.task_cpu
        guilty = self.guilty(o)
        if guilty is not None:
            rep.guilty_frame = guilty
            rep.guilty = function_name(guilty)
        rep.title = rule.title(o.match, rep.guilty)
        if len(self.done) >= MAX_REPORTS:
            return
        if rule.wants_trace and o.frames == 0 and not any(ex for _, ex in o.candidates):
            rep.corrupted = True
            rep.problems.append("no stack trace in the report")
        self.done.append(rep)

    def guilty(self, o: _Open) -> str | None:
        """The first frame not in SKIP or WEAK, else the first not in SKIP.
        A return address at offset 0 lies past a noreturn call, in the next
        function: with a System.map it is looked up again one byte earlier,
        without one it is passed over."""
        names: list[str] = []
        for cand, exact in o.candidates:
            if isinstance(cand, str):
                sym = cand
            else:
                if cand.partial or not cand.reliable or SKIP.fullmatch(function_name(cand.function)):
                    continue
                sym = str(cand)
                if cand.offset == "0x0" and not exact:
                    found = self.previous_byte(cand.address)
                    if found is None:
                        continue
                    sym = found
            name = function_name(sym)
            if name and not name.startswith("0x") and not SKIP.fullmatch(name):
                names.append(sym)
        strong = [s for s in names if not WEAK.fullmatch(function_name(s))]
        return (strong or names or [None])[0]

    def previous_byte(self, address: str | None) -> str | None:
        if self.symbols is None or address is None:
            return None
        try:
            return self.symbols.format(int(address, 16) - 1)
        except ValueError:
            return None


def parse(text: str | list[Line], symbols: "SystemMap | None" = None,
          truncated: bool | None = None) -> list[Report]:
    """Every report in the log, in order of their first line. symbols: a
    System.map for better guilty frames. truncated: whether the log was cut
    off mid-line (found from text when it is a str). Never raises."""
    lines = klog.lines_of(text)
    p = _ReportParser(klog.mode(lines), symbols)
    if truncated is None:
        truncated = klog.cut_off(text, lines)
    # The words of a line cut off may be a prefix of what the kernel
    # printed: it neither starts nor ends a report, it marks the ones it
    # would have continued as cut.
    for line in lines[:-1] if truncated else lines:
        p.feed(line)
    if truncated:
        last = lines[-1]
        stream = last.caller if p.mode == klog.CALLER else None
        for o in p.open:
            if stream in o.streams or last.caller is None:
                o.report.corrupted = True
                o.report.problems.append("log ends inside the report")
    for o in list(p.open):
        p.finish(o)
    return sorted(p.done, key=lambda r: (r.first_line, r.last_line))


def titles(reports: list[Report]) -> list[str]:
    """Distinct titles in order of first appearance."""
    seen: dict[str, None] = {}
    for r in reports:
        seen.setdefault(r.title, None)
    return list(seen)
