"""Field validators the expectations' schemas share with the step types'
(steps/fields.py re-exports them for the steps, below which they must sit
for the expectations to use them): each takes (value, where, ctx) and
raises where.error(...) with what was expected."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from harness.core.yamlfile import Where
from harness.guest.vcpu_probe import ALL_LOCATIONS

if TYPE_CHECKING:
    from harness.scenario.parse import Ctx

NUM = (int, float)


def cpu(value: Any, where: Where, ctx: "Ctx") -> None:
    if not 0 <= value < ctx.cpus:
        raise where.error(f"CPU {value} out of range: the machine has cpus: {ctx.cpus} (0-{ctx.cpus - 1})")


def positive(value: Any, where: Where, ctx: "Ctx") -> None:
    # `not value > 0`, not `value <= 0`: nan is neither, and must not pass.
    if not value > 0:
        raise where.error(f"expected a positive number, got {value}")


def cpu_key(key: Any, where: Where, ctx: "Ctx") -> None:
    """A key of a {CPU: ...} table."""
    _cpu_number(key, where, ctx, "keys are CPU numbers")


def _cpu_number(value: Any, where: Where, ctx: "Ctx", expected: str) -> None:
    """An integer CPU of the machine. YAML reads `true` as a boolean, which
    Python takes for the integer 1: it must not stand for CPU 1."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise where.error(f"{expected}, got {value!r}")
    cpu(value, where, ctx)


def cpu_list(value: Any, where: Where, ctx: "Ctx") -> None:
    if not value:
        raise where.error("expected a non-empty list of CPU numbers")
    for c in value:
        _cpu_number(c, where, ctx, "expected CPU numbers")


def locations(value: Any, where: Where, ctx: "Ctx") -> None:
    for loc in value:
        if loc not in ALL_LOCATIONS:
            raise where.error(f"unknown vCPU location {loc!r} (expected one of: {', '.join(ALL_LOCATIONS)})")


def regex(value: Any, where: Where, ctx: "Ctx") -> None:
    """A pattern to look for in console text. One that matches the empty
    string ('', '.*', 'a?') is found in any text: as 'present' it passes and
    as 'absent' it fails whatever the kernel printed."""
    try:
        compiled = re.compile(value)
    except re.error as exc:
        raise where.error(f"bad regular expression: {exc}") from None
    if compiled.search("") is not None:
        raise where.error(f"the pattern {value!r} matches the empty string, so any console text has it")
