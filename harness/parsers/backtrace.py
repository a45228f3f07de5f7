"""CPU backtraces from sysrq-l / trigger_all_cpu_backtrace(): the IPI form of
lib/nmi_backtrace.c and the function-call fallback of drivers/tty/sysrq.c.

One "round" is what one trigger printed: the sender's own dump, the
"Sending NMI from CPU X to CPUs <list>:" line, and one block per answering
CPU. parse() returns the first round (what a scenario step that wrote
sysrq-l once sees); parse_all() returns every round in a log.

Attribution: with CONFIG_PRINTK_CALLER every line carries [T<pid>] (task)
or [C<cpu>] (interrupt context, e.g. the backtrace IPI handler), so lines
of blocks printed at the same time are told apart by that prefix. A log
without prefixes is read in order, a block ending at its first line that is
not part of a register dump or stack trace."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from harness.parsers import klog
from harness.parsers.console_lines import Line
from harness.parsers.klog import Frame

__all__ = ["FULL", "IDLE", "FALLBACK", "FALLBACK_IDLE", "Frame", "CpuBacktrace",
           "BacktraceReport", "parse", "parse_all"]

FULL = "full"                       # "NMI backtrace for cpu N" + regs/trace
IDLE = "idle"                       # "NMI backtrace for cpu N skipped: idling at ..."
FALLBACK = "fallback"               # "sysrq: CPUn:" + trace (no backtrace IPI)
FALLBACK_IDLE = "fallback-idle"     # "sysrq: CPUn: backtrace skipped as idling"

_FULL = re.compile(r"NMI backtrace for cpu (\d{1,5})$")
_IDLE = re.compile(r"NMI backtrace for cpu (\d{1,5}) skipped: idling at (\S+)")
_SENDING = re.compile(r"Sending NMI from CPU (\d{1,5}) to CPUs ([0-9,\-]{0,600}):")
# Open blocks at a time; more only come from junk, and would make the
# per-line lookups cost more than constant time.
_MAX_OPEN = 64
# Rounds kept: a real log has a few; a corrupted one must not grow memory
# by a CPU list per line.
MAX_ROUNDS = 1000
_FALLBACK = re.compile(r"CPU(\d{1,5}):$")
_FALLBACK_IDLE = re.compile(r"CPU(\d{1,5}): backtrace skipped as idling")
_SYSRQ_L = "sysrq: Show backtrace of all active CPUs"


@dataclass
class CpuBacktrace:
    cpu: int
    form: str
    idle_at: str | None = None
    frames: list[Frame] = field(default_factory=list)
    registers: dict[str, str] = field(default_factory=dict)
    first_line: int = 0
    last_line: int = 0
    pc: str | None = None           # symbolic epc from show_regs
    ra: str | None = None
    comm: str | None = None         # from the "CPU: n UID: .. PID: p Comm: c" line
    pid: int | None = None
    caller: str | None = None       # printk caller of the header line
    truncated: bool = False         # the log ended inside this block

    @property
    def mode(self) -> str | None:
        """'user' when the IPI interrupted user space (no kernel trace then)."""
        # RISC-V 'epc : <hex>', arm64 'pc : <hex>' (a user address; a kernel
        # one is printed as a symbol)
        epc = self.registers.get("epc") or self.registers.get("pc")
        if epc is None:
            return "kernel" if self.frames else None
        return "kernel" if epc[0] in "89abcdef" else "user"

    def to_json(self) -> dict:
        return {"form": self.form, "idle_at": self.idle_at, "comm": self.comm, "pid": self.pid,
                "mode": self.mode, "pc": self.pc, "frames": [str(f) for f in self.frames],
                "registers": dict(self.registers), "caller": self.caller,
                "truncated": self.truncated, "lines": [self.first_line, self.last_line]}


@dataclass
class BacktraceReport:
    sender: int | None = None
    targets: list[int] | None = None
    cpus: dict[int, CpuBacktrace] = field(default_factory=dict)
    corrupted: bool = False
    trigger: str | None = None      # "sysrq" when the sysrq-l line began the round
    problems: list[str] = field(default_factory=list)
    first_line: int = 0
    last_line: int = 0
    sending_line: int = 0
    fallback: bool | None = None    # whether its blocks are the fallback's "CPUn:" ones

    def forms(self) -> dict[int, str]:
        return {cpu: bt.form for cpu, bt in sorted(self.cpus.items())}

    @property
    def mechanism(self) -> str | None:
        """'ipi' (lib/nmi_backtrace.c: a Sending line or "NMI backtrace for
        cpu" blocks), 'fallback' (drivers/tty/sysrq.c's "CPUn:" dumps over
        function calls), None when the round printed neither. The fallback
        round names a sender too (the CPU that dumped first), so a sender
        alone says nothing about the mechanism."""
        if self.fallback:
            return "fallback"
        if self.targets is not None or any(f in (FULL, IDLE) for f in self.forms().values()):
            return "ipi"
        return None

    @property
    def missing(self) -> list[int]:
        """Targets that never printed anything (e.g. stuck with IRQs off)."""
        if self.targets is None:
            return []
        return [c for c in self.targets if c not in self.cpus]

    @property
    def truncated(self) -> bool:
        return any(b.truncated for b in self.cpus.values())

    def flag(self, problem: str) -> None:
        self.corrupted = True
        if len(self.problems) < 20:
            self.problems.append(problem)

    def to_json(self) -> dict:
        return {
            "trigger": self.trigger, "sender": self.sender, "targets": self.targets,
            "missing": self.missing, "corrupted": self.corrupted, "problems": list(self.problems),
            "lines": [self.first_line, self.last_line],
            "cpus": {str(c): b.to_json() for c, b in sorted(self.cpus.items())},
        }


def _header(msg: str) -> tuple[int, str, str | None] | None:
    """(cpu, form, idle_at) for a line that starts a CPU's block."""
    if msg.startswith("NMI backtrace for cpu "):
        if m := _IDLE.match(msg):
            return int(m.group(1)), IDLE, m.group(2)
        if m := _FULL.match(msg):
            return int(m.group(1)), FULL, None
        return None
    if msg.startswith("sysrq: CPU"):
        msg = msg[len("sysrq: "):]      # drivers/tty/sysrq.c's pr_fmt
    if msg.startswith("CPU") and len(msg) < 64:
        if m := _FALLBACK_IDLE.match(msg):
            return int(m.group(1)), FALLBACK_IDLE, None
        if m := _FALLBACK.match(msg):
            return int(m.group(1)), FALLBACK, None
    return None


class _BacktraceParser:
    def __init__(self) -> None:
        self.rounds: list[BacktraceReport] = []
        self.round: BacktraceReport | None = None
        self.open: dict[str | None, CpuBacktrace] = {}     # stream -> open block
        self.last: CpuBacktrace | None = None              # for prefix-less lines
        self.mode = klog.PLAIN

    def new_round(self, first_line: int, trigger: str | None = None) -> BacktraceReport:
        self.close_all()
        self.round = BacktraceReport(trigger=trigger, first_line=first_line, last_line=first_line)
        if len(self.rounds) < MAX_ROUNDS:
            self.rounds.append(self.round)
        elif len(self.rounds) == MAX_ROUNDS:
            self.rounds[-1].flag(f"more than {MAX_ROUNDS} rounds: the rest not kept")
            self.rounds.append(BacktraceReport())   # a marker, dropped at the end
        return self.round

    def close_all(self) -> None:
        self.open.clear()
        self.last = None

    def close(self, block: CpuBacktrace) -> None:
        for key in [k for k, b in self.open.items() if b is block]:
            del self.open[key]
        if self.last is block:
            self.last = None

    def feed(self, line: Line, cut: bool = False) -> None:
        """cut: the line is the last of a log that ends mid-line, so its
        words may be a prefix of what the kernel printed."""
        text = line.text
        if len(text) > klog.MAX_LINE:
            return
        if not klog.is_kernel(line, self.mode):
            return      # shell output or kdb between kernel lines
        msg = text.strip()
        if msg == _SYSRQ_L:
            self.new_round(line.number, "sysrq")
            return
        if msg.startswith("Sending NMI from CPU "):
            if not cut:
                self.sending(line, msg)
            return
        head = _header(msg)
        if head is not None:
            # "...cpu 3 skipped: idling" cut to "...cpu 3" would read as a
            # full block, "CPU2: off" cut to "CPU2:" as a fallback one.
            if not cut:
                self.start(line, *head)
            return
        self.continue_block(line, msg)

    def sending(self, line: Line, msg: str) -> None:
        m = _SENDING.match(msg)
        rnd = self.round
        sender = int(m.group(1)) if m else None
        if rnd is None or rnd.sender is not None:
            old = rnd
            rnd = self.new_round(line.number)
            # The new sender's own dump came before this line and was taken
            # for an answer to the old round: move it over.
            if old is not None and sender is not None:
                blk = old.cpus.get(sender)
                if (blk is not None and blk.first_line > old.sending_line
                        and sender not in (old.targets or [])):
                    del old.cpus[sender]
                    rnd.cpus[sender] = blk
                    rnd.first_line = blk.first_line
        self.close_all()
        rnd.last_line = line.number
        rnd.sending_line = line.number
        if m is None:
            rnd.flag(f"line {line.number}: unreadable 'Sending NMI' line")
            return
        rnd.sender = sender
        rnd.targets = klog.cpu_list(m.group(2))
        if rnd.targets is None:
            rnd.flag(f"line {line.number}: bad cpulist {m.group(2)!r}")
        elif sender in rnd.targets:
            rnd.flag(f"line {line.number}: sender {sender} listed among its own targets")
        for cpu in rnd.cpus:
            if cpu != sender:
                rnd.flag(f"cpu {cpu} printed a block before the 'Sending NMI' line")

    def start(self, line: Line, cpu: int, form: str, idle_at: str | None) -> None:
        rnd = self.round
        fallback = form in (FALLBACK, FALLBACK_IDLE)
        if (rnd is None or cpu in rnd.cpus
                # After the Sending line only IPI handlers ([C<n>]) answer;
                # a block from a task starts the next trigger.
                or (rnd.sender is not None and line.caller is not None
                    and line.caller.startswith("T"))
                or (rnd.fallback is not None and rnd.fallback != fallback)):
            rnd = self.new_round(line.number)
        rnd.fallback = fallback
        block = CpuBacktrace(cpu, form, idle_at=idle_at, first_line=line.number,
                             last_line=line.number, caller=line.caller)
        rnd.cpus[cpu] = block
        rnd.last_line = line.number
        if line.caller_cpu is not None and line.caller_cpu != cpu:
            rnd.flag(f"line {line.number}: cpu {cpu}'s header printed by {line.caller}")
        if rnd.sender is not None and rnd.targets is not None and cpu not in rnd.targets:
            rnd.flag(f"line {line.number}: cpu {cpu} answered but was not a target")
        if rnd.sender is None and fallback and len(rnd.cpus) == 1:
            # The fallback prints the sysrq CPU's dump first, then IPIs.
            rnd.sender = cpu
        if form in (FULL, FALLBACK):
            stream = line.caller
            old = self.open.get(stream)
            if old is not None:
                self.close(old)
            if len(self.open) >= _MAX_OPEN:
                self.close(next(iter(self.open.values())))
            self.open[stream] = block
            self.last = block
        else:
            if self.open.get(line.caller) is not None:
                self.close(self.open[line.caller])

    def continue_block(self, line: Line, msg: str) -> None:
        stream = line.caller
        if stream is not None:
            block = self.open.get(stream)
            if block is None and line.caller_cpu is not None:
                # An interrupt on a CPU whose block began in task context.
                block = next((b for b in self.open.values() if b.cpu == line.caller_cpu), None)
        else:
            block = self.last
        if block is None:
            return
        if not klog.is_stack_line(msg):
            self.close(block)
            return
        self.add(block, line, msg)

    def add(self, block: CpuBacktrace, line: Line, msg: str) -> None:
        rnd = self.round
        block.last_line = line.number
        if rnd is not None:
            rnd.last_line = max(rnd.last_line, line.number)
        if frame := klog.parse_frame(msg):
            block.frames.append(frame)
            return
        if task := klog.parse_task_line(msg):
            block.comm, block.pid = task.comm, task.pid
            if task.cpu != block.cpu and rnd is not None:
                rnd.flag(f"line {line.number}: 'CPU: {task.cpu}' inside cpu {block.cpu}'s block")
            return
        if sym := klog.symbolic_register(msg):
            if sym[0] == klog.PC:
                block.pc = sym[1]
            else:
                block.ra = sym[1]
            return
        block.registers.update(klog.parse_registers(msg))


def parse_all(text: str | list[Line], truncated: bool | None = None) -> list[BacktraceReport]:
    """Every backtrace round in the log, in order. truncated: whether the log
    was cut off mid-line (found from text when it is a str). Never raises."""
    p = _BacktraceParser()
    lines = klog.lines_of(text)
    p.mode = klog.mode(lines)
    if truncated is None:
        truncated = klog.cut_off(text, lines)
    for i, line in enumerate(lines):
        p.feed(line, cut=truncated and i == len(lines) - 1)
    if lines and truncated:
        last = lines[-1].number
        for rnd in p.rounds:
            for block in rnd.cpus.values():
                if block.last_line == last and block.form in (FULL, FALLBACK):
                    block.truncated = True
                    # Without the newline the last frame may be cut short.
                    if block.frames and lines[-1].text.lstrip().startswith("[<"):
                        block.frames[-1].partial = True
                    rnd.flag(f"log ends inside cpu {block.cpu}'s backtrace")
    return p.rounds[:MAX_ROUNDS]


def parse(text: str | list[Line], truncated: bool | None = None) -> BacktraceReport:
    """The first round (empty report when there is none). Never raises."""
    rounds = parse_all(text, truncated)
    return rounds[0] if rounds else BacktraceReport()
