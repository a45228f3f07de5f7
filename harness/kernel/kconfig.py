"""Kconfig fragments: parsing what they ask for, checking what survived."""
from __future__ import annotations

import re
from pathlib import Path

_SET = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")


def parse(text: str) -> dict[str, str]:
    """Options of a .config or fragment; 'n' for '# ... is not set'."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if m := _SET.match(line):
            out[m.group(1)] = m.group(2)
        elif m := _UNSET.match(line):
            out[m.group(1)] = "n"
    return out


def missing(requested: dict[str, str], actual: dict[str, str]) -> list[str]:
    """Requested options whose final value differs, as 'CONFIG_X=want (got)'."""
    problems = []
    for name, want in requested.items():
        got = actual.get(name, "n")
        if want == "n":
            if got not in ("n", ""):
                problems.append(f"{name}=n (got {got})")
        elif got != want:
            problems.append(f"{name}={want} (got {'unset' if got == 'n' else got})")
    return problems


def read(path: Path) -> dict[str, str]:
    return parse(path.read_text())


def has(config: dict[str, str], option: str) -> bool:
    return config.get(option, "n") not in ("n", "")
