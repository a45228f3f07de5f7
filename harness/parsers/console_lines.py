"""Splitting a raw console log into kernel lines: printk timestamp and
caller prefix stripped, CR/LF noise and ANSI escapes removed."""
from __future__ import annotations

import re
from dataclasses import dataclass

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_PREFIX = re.compile(r"^\[\s*(\d+\.\d+)\](?:\[\s*([TC])(\d+)\])?\s?")


@dataclass(frozen=True)
class Line:
    number: int                 # 1-based line number in the input
    text: str                   # message with the prefix stripped
    timestamp: float | None
    caller: str | None          # "T60" (task) or "C2" (CPU, interrupt context)

    @property
    def caller_cpu(self) -> int | None:
        """CONFIG_PRINTK_CALLER's [C<n>] names the CPU for output from
        interrupt context, such as a backtrace IPI handler."""
        if self.caller and self.caller[0] == "C":
            return int(self.caller[1:])
        return None


def split(text: str) -> list[Line]:
    out: list[Line] = []
    for i, raw in enumerate(text.replace("\r", "").split("\n"), start=1):
        raw = _ANSI.sub("", raw)
        m = _PREFIX.match(raw)
        if m:
            caller = f"{m.group(2)}{m.group(3)}" if m.group(2) else None
            out.append(Line(i, raw[m.end():], float(m.group(1)), caller))
        else:
            out.append(Line(i, raw, None, None))
    return out
