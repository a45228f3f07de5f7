"""The QEMU options a scenario may add (`machine.qemu_args`): an allow-list.

Everything else is refused, because QEMU options can open host files and
sockets (-drive, -chardev, -serial, -monitor, -qmp, -incoming, -loadvm,
-object, -fsdev, -netdev, -plugin, -trace, -D, -readconfig, -add-fd, a bare
argument taken as a disk image, -machine dumpdtb=/dtb=, -icount rrfile=, ...).
Each allowed option takes one value made of comma-separated items; every item
is checked against the option's own table, so no property that names a file,
a path or a socket can get through. docs/scenarios.md lists the same table.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from harness.core.yamlfile import Where, item_where

_WORD = r"[A-Za-z0-9_.-]+"
_ON_OFF = r"on|off|true|false|yes|no"


@dataclass(frozen=True)
class Option:
    """head: the pattern of the first item when it is not prop=value (None:
    every item is prop=value); props: property name -> value pattern."""
    why: str
    head: str | None
    props: dict[str, str]


ALLOWED: dict[str, Option] = {
    "-cpu": Option("CPU model and ISA extensions, e.g. rv64,sv39=on,zicbom=off",
                   head=_WORD, props={_WORD: _WORD}),
    "-machine": Option("virt interrupt-controller properties only (the type is the harness's)",
                       head=None, props={"aclint": _ON_OFF, "aia": r"none|aplic|aplic-imsic",
                                         "aia-guests": r"[0-7]"}),
    "-accel": Option("TCG settings, e.g. tcg,thread=single", head=r"tcg",
                     props={"thread": r"single|multi", "tb-size": r"\d{1,5}",
                            "split-wx": _ON_OFF}),
    "-icount": Option("deterministic instruction counting, without record/replay files",
                      head=None, props={"shift": r"\d{1,2}|auto", "align": _ON_OFF,
                                        "sleep": _ON_OFF}),
    "-rtc": Option("the guest clock's base and source", head=None,
                   props={"base": r"utc|localtime|\d{4}-\d\d-\d\d(?:T\d\d:\d\d:\d\d)?",
                          "clock": r"host|rt|vm", "driftfix": r"none|slew"}),
}
ALIASES = {"-M": "-machine"}
MAX_ARGS = 32


class UnsafeQemuArg(ValueError):
    def __init__(self, index: int, message: str) -> None:
        self.index = index
        super().__init__(message)


def _check_value(opt: str, rule: Option, value: str, index: int) -> None:
    if not value or ",," in value or value.startswith(",") or value.endswith(","):
        raise UnsafeQemuArg(index, f"{opt} {value!r}: expected comma-separated items, "
                                   "without empty items or ',,' escapes")
    items = value.split(",")
    if rule.head is not None:
        if "=" in items[0] or not re.fullmatch(rule.head, items[0]):
            raise UnsafeQemuArg(index, f"{opt} {value!r}: the first item must match {rule.head}")
        items = items[1:]
    for item in items:
        prop, eq, val = item.partition("=")
        pattern = next((v for k, v in rule.props.items() if re.fullmatch(k, prop)), None)
        if pattern is None:
            raise UnsafeQemuArg(index, f"{opt} property {prop!r} is not allowed "
                                       f"(allowed: {', '.join(rule.props)})")
        if not eq or not re.fullmatch(pattern, val):
            raise UnsafeQemuArg(index, f"{opt} {prop}={val!r}: expected a value matching {pattern}")


def check(args: Sequence[str]) -> None:
    """Raise UnsafeQemuArg (with the index of the offending item) unless
    args is a sequence of allowed `-option value` pairs."""
    if len(args) > MAX_ARGS:
        raise UnsafeQemuArg(MAX_ARGS, f"at most {MAX_ARGS} items, got {len(args)}")
    i = 0
    while i < len(args):
        opt = args[i]
        if not isinstance(opt, str) or not opt.startswith("-"):
            raise UnsafeQemuArg(i, f"{opt!r} is not an option: QEMU would open a bare argument "
                                   "as a disk image")
        name = ALIASES.get(opt, opt)
        if name.startswith("--"):
            name = ALIASES.get(name[1:], name[1:])
        if name not in ALLOWED:
            hint = (" (give the option and its value as separate list items)"
                    if " " in opt and opt.split()[0] in ALLOWED else "")
            raise UnsafeQemuArg(i, f"QEMU option {opt!r} is not allowed{hint}; a scenario may "
                                   f"only add: {', '.join(ALLOWED)} (docs/scenarios.md)")
        if i + 1 >= len(args):
            raise UnsafeQemuArg(i, f"{opt} needs a value")
        _check_value(name, ALLOWED[name], args[i + 1], i + 1)
        i += 2


def check_scenario(path: Path, seq: Any, args: Sequence[str], where: Where) -> None:
    """check() for a scenario's machine.qemu_args, as an error naming the
    file and the line of the offending item."""
    try:
        check(args)
    except UnsafeQemuArg as exc:
        at = item_where(path, seq, exc.index, f"machine.qemu_args[{exc.index}]") \
            if isinstance(seq, list) else where
        raise at.error(str(exc)) from None
