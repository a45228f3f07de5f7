"""Field validators the expectations' schemas share with the step types'
(steps/fields.py re-exports them for the steps, below which they must sit
for the expectations to use them): each takes (value, where, ctx) and
raises where.error(...) with what was expected."""
from __future__ import annotations

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
    if value <= 0:
        raise where.error(f"expected a positive number, got {value}")


def cpu_list(value: Any, where: Where, ctx: "Ctx") -> None:
    if not value:
        raise where.error("expected a non-empty list of CPU numbers")
    for c in value:
        if not isinstance(c, int) or isinstance(c, bool):
            raise where.error(f"expected CPU numbers, got {c!r}")
        cpu(c, where, ctx)


def locations(value: Any, where: Where, ctx: "Ctx") -> None:
    for loc in value:
        if loc not in ALL_LOCATIONS:
            raise where.error(f"unknown vCPU location {loc!r} (expected one of: {', '.join(ALL_LOCATIONS)})")
