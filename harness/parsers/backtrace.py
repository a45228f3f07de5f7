"""CPU backtraces from sysrq-l / trigger_all_cpu_backtrace(): the IPI form of
lib/nmi_backtrace.c and the function-call fallback of drivers/tty/sysrq.c."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import console_lines, cpulist

FULL = "full"                       # "NMI backtrace for cpu N" + regs/trace
IDLE = "idle"                       # "NMI backtrace for cpu N skipped: idling at ..."
FALLBACK = "fallback"               # "CPUn:" + trace (no backtrace IPI)
FALLBACK_IDLE = "fallback-idle"     # "CPUn: backtrace skipped as idling"

_FULL = re.compile(r"^NMI backtrace for cpu (\d+)$")
_IDLE = re.compile(r"^NMI backtrace for cpu (\d+) skipped: idling at (\S+)")
_SENDING = re.compile(r"^Sending NMI from CPU (\d+) to CPUs ([0-9,\-]*):")
_FALLBACK = re.compile(r"^CPU(\d+):$")
_FALLBACK_IDLE = re.compile(r"^CPU(\d+): backtrace skipped as idling")
_FRAME = re.compile(r"^\[<([0-9a-f]+)>\] (\S+?)(?:\+(0x[0-9a-f]+)/(0x[0-9a-f]+))?(?: \[(\S+)\])?$")
_REG = re.compile(r"(\w+)\s*: ([0-9a-f]{16}|\S+\+0x[0-9a-f]+/0x[0-9a-f]+)")


@dataclass
class Frame:
    address: str
    function: str
    offset: str | None = None
    size: str | None = None

    def __str__(self) -> str:
        return f"{self.function}+{self.offset}/{self.size}" if self.offset else self.function


@dataclass
class CpuBacktrace:
    cpu: int
    form: str
    idle_at: str | None = None
    frames: list[Frame] = field(default_factory=list)
    registers: dict[str, str] = field(default_factory=dict)
    first_line: int = 0
    last_line: int = 0


@dataclass
class BacktraceReport:
    sender: int | None = None
    targets: list[int] | None = None
    cpus: dict[int, CpuBacktrace] = field(default_factory=dict)
    corrupted: bool = False

    def forms(self) -> dict[int, str]:
        return {cpu: bt.form for cpu, bt in sorted(self.cpus.items())}

    def to_json(self) -> dict:
        return {
            "sender": self.sender, "targets": self.targets, "corrupted": self.corrupted,
            "cpus": {str(c): {"form": b.form, "idle_at": b.idle_at,
                              "frames": [str(f) for f in b.frames],
                              "lines": [b.first_line, b.last_line]}
                     for c, b in sorted(self.cpus.items())},
        }


def parse(text: str) -> BacktraceReport:
    report = BacktraceReport()
    current: CpuBacktrace | None = None
    for line in console_lines.split(text):
        msg = line.text.strip()
        if m := _SENDING.match(msg):
            report.sender = int(m.group(1))
            report.targets = cpulist.parse(m.group(2))
            if report.targets is None:
                report.corrupted = True
            current = None
            continue
        start: CpuBacktrace | None = None
        if m := _IDLE.match(msg):
            start = CpuBacktrace(int(m.group(1)), IDLE, idle_at=m.group(2))
        elif m := _FULL.match(msg):
            start = CpuBacktrace(int(m.group(1)), FULL)
        elif m := _FALLBACK_IDLE.match(msg):
            start = CpuBacktrace(int(m.group(1)), FALLBACK_IDLE)
        elif m := _FALLBACK.match(msg):
            start = CpuBacktrace(int(m.group(1)), FALLBACK)
        if start is not None:
            start.first_line = start.last_line = line.number
            if start.cpu in report.cpus:
                # A second block for one CPU: keep the first, flag the log.
                report.corrupted = True
                current = None
            else:
                report.cpus[start.cpu] = start
                current = start if start.form in (FULL, FALLBACK) else None
            continue
        if current is None:
            continue
        if m := _FRAME.match(msg):
            current.frames.append(Frame(m.group(1), m.group(2), m.group(3), m.group(4)))
            current.last_line = line.number
        elif msg.startswith(("epc", "ra ", " ra", "gp", "status:", "s0", "t0", "a0")) or " : " in msg:
            for rm in _REG.finditer(msg):
                current.registers[rm.group(1)] = rm.group(2)
            current.last_line = line.number
        elif msg.startswith(("CPU:", "Hardware name:", "Call Trace:")):
            current.last_line = line.number
        elif line.timestamp is not None:
            # Any other kernel line ends the block.
            current = None
    return report
