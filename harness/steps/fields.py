"""Field validators of the step types' schemas: each takes (value, where,
ctx) and raises where.error(...) with what was expected. Those the
expectations' schemas use too live below both, in expect/validators.py;
they are re-exported here, so the step types find every validator here."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from harness.core.yamlfile import Where
from harness.expect.validators import NUM, cpu, cpu_list, locations, positive, regex
from harness.scenario import limits as scenario_limits

if TYPE_CHECKING:
    from harness.scenario.parse import Ctx

# NUM, cpu, cpu_list, locations, positive and regex come from expect/validators.py.
__all__ = ["NUM", "cpu", "cpu_list", "locations", "positive", "size_bytes", "sysrq_key", "one_line",
           "via", "not_negative", "seconds", "share", "balloon_target", "regex", "kdb_commands",
           "LKDTM_BACKGROUND", "LKDTM_CRASHING", "LKDTM_RETURNING", "LKDTM_POINTS", "crash_point"]

_MEMORY = re.compile(r"^\d+[MG]$")


def size_bytes(text: str) -> int:
    """'512M' or '1G' in bytes (validated by MEMORY)."""
    return int(text[:-1]) << (20 if text[-1] == "M" else 30)


def sysrq_key(value: Any, where: Where, ctx: "Ctx") -> None:
    if not re.fullmatch(r"[0-9a-z]", value):
        raise where.error(f"expected a single sysrq key [0-9a-z], got {value!r}")


def one_line(value: Any, where: Where, ctx: "Ctx") -> None:
    # Any text goes through the console's encoded transfer (newlines,
    # here-docs and quotes included); scenario_limits has what cannot.
    if problem := scenario_limits.command_problem(value):
        raise where.error(problem)


def via(value: Any, where: Where, ctx: "Ctx") -> None:
    if value not in ("proc", "break"):
        raise where.error(f"expected 'proc' (/proc/sysrq-trigger) or 'break' (serial BREAK), got {value!r}")


def not_negative(value: Any, where: Where, ctx: "Ctx") -> None:
    """A wait inside a step (reset's `after`, balloon's `hold`): 0 means at
    once; the host idles that long whatever the step's timeout, so it is
    bounded as `seconds` is."""
    if not value >= 0:
        raise where.error(f"expected a number >= 0, got {value}")
    scenario_limits.check_duration(value, where)


def seconds(value: Any, where: Where, ctx: "Ctx") -> None:
    """A duration the step spends (sleep, pause, load, starve): positive and
    no longer than the longest timeout (scenario/limits.py), so no step
    holds the harness past what a hang would."""
    positive(value, where, ctx)
    scenario_limits.check_duration(value, where)


def share(value: Any, where: Where, ctx: "Ctx") -> None:
    if not 0.01 <= value < 1:
        raise where.error(f"expected a share of one host CPU from 0.01 to below 1, got {value}")


def balloon_target(value: Any, where: Where, ctx: "Ctx") -> None:
    if not _MEMORY.match(value):
        raise where.error(f"expected a size like 256M, got {value!r}")
    if not 64 << 20 <= size_bytes(value) < ctx.memory:
        raise where.error(f"expected a target from 64M up to below the machine's memory "
                          f"({ctx.memory >> 20}M), got {value}")


def kdb_commands(value: Any, where: Where, ctx: "Ctx") -> None:
    for cmd in value:
        if not isinstance(cmd, str) or (problem := scenario_limits.kdb_command_problem(cmd)):
            raise where.error(f"expected one-line kdb commands, got {cmd!r}"
                              + (f": {problem}" if isinstance(cmd, str) else ""))
        if cmd.strip() == "go":
            raise where.error("leave 'go' out: the step always leaves kdb with go")


# LKDTM crash points the scenarios use (drivers/misc/lkdtm/); those that
# never return run in the background.
LKDTM_BACKGROUND = ("HARDLOCKUP", "SOFTLOCKUP", "SPINLOCKUP", "HUNG_TASK", "SMP_CALL_LOCKUP", "LOOP")
LKDTM_CRASHING = ("PANIC", "BUG", "EXCEPTION", "CORRUPT_STACK", "UNALIGNED_LOAD_STORE_WRITE")
LKDTM_RETURNING = ("WARNING", "WARNING_MESSAGE")
LKDTM_POINTS = LKDTM_BACKGROUND + LKDTM_CRASHING + LKDTM_RETURNING


def crash_point(value: Any, where: Where, ctx: "Ctx") -> None:
    if value not in LKDTM_POINTS:
        raise where.error(f"unknown LKDTM crash point {value!r} (expected one of: {', '.join(LKDTM_POINTS)})")
