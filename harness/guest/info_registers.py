"""The HMP `info registers` output, parsed: every vCPU's registers by name
(riscv64 and aarch64 layouts)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class CpuRegisters:
    index: int                  # from the "CPU#N" header
    regs: dict[str, int] = field(repr=False)   # every register printed; "x1/ra" as "x1" and "ra"

    @property
    def pc(self) -> int:
        return self.regs["pc"]

    @property
    def hartid(self) -> int | None:
        return self.regs.get("mhartid")

    def __getitem__(self, name: str) -> int:
        return self.regs[name]


_CPU_HEADER = re.compile(r"^CPU#(\d+)\s*$", re.M)
_HEX = re.compile(r"^[0-9a-fA-F]+$")
# aarch64's NAME=value tokens (no spaces round the "="), split into a pair.
_NAME_EQ_VALUE = re.compile(r"\b([A-Za-z][A-Za-z0-9_]*)=([0-9a-fA-F]+)\b")


def parse_info_registers(text: str) -> list[CpuRegisters]:
    """Parse `info registers [-a]` output: a "CPU#N" line, then lines of
    `name value` pairs, values in hex. QEMU's riscv target prints
    ` pc       ffffffff80001234`, ` x1/ra    ... x2/sp    ...`, ` V      =   0`;
    its aarch64 target ` PC=ffff80000801234c X00=... X30=... SP=...`
    (target/arm/cpu.c aarch64_cpu_dump_state). Every name is also stored
    lower-cased ("PC" as "pc", "X30" as "x30"), so callers need one spelling."""
    text = _NAME_EQ_VALUE.sub(r"\1 \2", text.replace("\r", ""))
    headers = list(_CPU_HEADER.finditer(text))
    cpus = []
    for i, h in enumerate(headers):
        end = headers[i + 1].start() if i + 1 < len(headers) else len(text)
        regs: dict[str, int] = {}
        for line in text[h.end():end].splitlines():
            tokens = [t for t in line.split() if t != "="]
            if len(tokens) < 2 or len(tokens) % 2:
                continue
            pairs = list(zip(tokens[0::2], tokens[1::2]))
            if not all(_HEX.match(v) for _, v in pairs):
                continue
            for name, value in pairs:
                for alias in name.split("/"):
                    regs[alias] = regs[alias.lower()] = int(value, 16)
        cpus.append(CpuRegisters(int(h.group(1)), regs))
    return cpus
