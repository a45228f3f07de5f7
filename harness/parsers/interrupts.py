"""/proc/interrupts: a counter per row per CPU, columns labelled with their
real CPU numbers (offline CPUs have no column, so columns shift)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

_HEADER = re.compile(r"^\s*((?:CPU\d+\s*)+)$")
_ROW = re.compile(r"^\s*([A-Za-z]*\d+|[A-Za-z]+):(.*)$")
# The shell's notice that a background job ended ("[1]+  Terminated  timeout
# 2 taskset ..."), which busybox sh prints after the next command's output:
# not part of /proc/interrupts. It made a clean snapshot "corrupted" in a
# random-sequence run (tests/data/interrupts/default-4cpus-job-notice.txt).
_JOB_NOTICE = re.compile(r"^\[\d+\][+-]?\s+(?:Done|Terminated|Killed|Stopped|Exit \d+|Hangup|Interrupt|Aborted)\b")


@dataclass
class InterruptRow:
    label: str                   # "IPI6", "10", "Err"
    counts: dict[int, int]       # cpu number -> count
    description: str             # "CPU backtrace interrupts", "RISC-V INTC 5 Edge riscv-timer"

    @property
    def is_ipi(self) -> bool:
        return self.label.startswith("IPI")

    @property
    def name(self) -> str:
        """IPI rows are named by their description, as the seeds name them;
        other rows by label and description."""
        return self.description if self.is_ipi else f"{self.label}: {self.description}".strip()


@dataclass
class Interrupts:
    cpus: list[int] = field(default_factory=list)
    rows: list[InterruptRow] = field(default_factory=list)
    corrupted: bool = False

    def row(self, name: str) -> InterruptRow | None:
        for r in self.rows:
            if r.name == name or r.description == name or r.label == name:
                return r
        return None

    def ipi_names(self) -> list[str]:
        return [r.description for r in self.rows if r.is_ipi]

    def to_json(self) -> dict:
        return {"cpus": self.cpus, "corrupted": self.corrupted,
                "rows": {r.name: {str(c): v for c, v in r.counts.items()} for r in self.rows}}


def parse(text: str) -> Interrupts:
    result = Interrupts()
    lines = [ln.rstrip("\r") for ln in text.splitlines()]
    header_seen = False
    for line in lines:
        if not line.strip():
            continue
        if not header_seen:
            m = _HEADER.match(line)
            if m:
                result.cpus = [int(tok[3:]) for tok in m.group(1).split()]
                header_seen = True
            continue
        m = _ROW.match(line)
        if not m:
            if not _JOB_NOTICE.match(line):
                result.corrupted = True
            continue
        label, rest = m.group(1), m.group(2).split()
        counts: dict[int, int] = {}
        i = 0
        while i < len(rest) and i < len(result.cpus) and rest[i].isdigit():
            counts[result.cpus[i]] = int(rest[i])
            i += 1
        if label.startswith("IPI") and len(counts) != len(result.cpus):
            result.corrupted = True
        result.rows.append(InterruptRow(label, counts, " ".join(rest[i:])))
    if not header_seen:
        result.corrupted = True
    return result


def delta(before: Interrupts, after: Interrupts, name: str) -> dict[int, int] | None:
    """Per-CPU change of one row between two snapshots, for CPUs in both;
    None when the row is missing from either."""
    a, b = before.row(name), after.row(name)
    if a is None or b is None:
        return None
    return {cpu: b.counts[cpu] - a.counts[cpu] for cpu in b.counts if cpu in a.counts}
