"""Bounds a scenario file must keep, checked when it is loaded (so by
`rvharness check`) before anything is expanded or booted:

- the number of steps after every (nested) `repeat` is expanded, computed by
  multiplying, never by expanding: a hostile file answers in milliseconds
  (1,000,000 steps used to take 11 s and 670 MB just to check);
- the length and shape of the shell commands the console sends (the
  transfer in console_wire.py carries any text, but not a NUL byte, and the
  time a command takes to send grows with its length).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.core.yamlfile import Where, item_where

# The largest seed scenario expands to 24 steps (hotplug-online-latency);
# 2,000 console steps take minutes of guest time already.
MAX_STEPS = 2000
# Nested repeats deeper than this are refused outright (and keep the
# counting below from recursing without end on a hostile file).
MAX_REPEAT_DEPTH = 8
# A shell command's bytes (UTF-8). 4 KiB of text (more than the tty's 4095-
# byte canonical line) must pass; the guest's line editor takes text in at
# 0.7-2 KB/s (console.TRANSFER_BYTES_PER_S), so 8 KiB already costs seconds.
MAX_COMMAND_BYTES = 8192
# A step's `timeout` and the machine's `boot_timeout`, in seconds. The
# longest shipped is 120 s; a bound of hours (or 1e300) means a hang is never
# called one within CI's 90 minutes, so the kernel's hang would surface as
# the pipeline's timeout instead of a failed check.
MAX_TIMEOUT_S = 1800.0


def _rounds(repeat: Any) -> int:
    """How many rounds a repeat mapping asks for; malformed values count as
    one round here and are reported by the scenario parser."""
    times, cpus = repeat.get("times"), repeat.get("cpus")
    if isinstance(times, int) and not isinstance(times, bool):
        return max(times, 0)
    if isinstance(cpus, list):
        return len(cpus)
    return 1


def _item(item: Any, at: Where, depth: int, memo: dict[int, int], path: Path) -> int:
    """Steps one list item expands to: a repeat multiplies its body."""
    repeat = item.get("repeat") if isinstance(item, dict) else None
    if not isinstance(repeat, dict):
        return 1
    if depth >= MAX_REPEAT_DEPTH:
        raise at.error(f"repeats nested more than {MAX_REPEAT_DEPTH} deep")
    body = Where(path, at.line, at.column, f"{at.context}.repeat.steps")
    return _rounds(repeat) * _count(repeat.get("steps"), depth + 1, memo, path, body)


def _count(seq: Any, depth: int, memo: dict[int, int], path: Path, where: Where) -> int:
    """Steps seq expands to. memo is keyed by the identity of lists that live
    as long as the parsed file: YAML anchors share one list, which is
    counted once, not walked again."""
    if not isinstance(seq, list):
        return 1
    if id(seq) in memo:
        return memo[id(seq)]
    memo[id(seq)] = 0           # a list that contains itself adds nothing
    total = sum(_item(item, item_where(path, seq, i, f"{where.context}[{i}]"), depth, memo, path)
                for i, item in enumerate(seq))
    memo[id(seq)] = total
    return total


def check_step_total(path: Path, steps: Any, where: Where) -> int:
    """The number of steps after expansion; an error naming the top-level
    step (a repeat) that contributes most when the total exceeds MAX_STEPS."""
    memo: dict[int, int] = {}
    total = _count(steps, 0, memo, path, Where(path, where.line, where.column, "steps"))
    if total <= MAX_STEPS:
        return total
    ats = [item_where(path, steps, i, f"steps[{i}]") for i in range(len(steps))]
    counts = [_item(item, ats[i], 0, memo, path) for i, item in enumerate(steps)]
    worst = max(range(len(steps)), key=counts.__getitem__)
    raise ats[worst].error(f"the steps expand to {total:,} steps (this one to {counts[worst]:,}); "
                           f"a scenario may have at most {MAX_STEPS:,} after repeats are expanded")


def command_problem(command: str) -> str | None:
    """Why a shell command cannot be sent to the guest, or None."""
    if not command.strip():
        return "expected a non-empty shell command"
    if "\0" in command:
        return "a shell command cannot contain a NUL character"
    try:
        size = len(command.encode("utf-8"))
    except UnicodeEncodeError:
        return "a shell command must be valid Unicode text (a lone surrogate is not)"
    if size > MAX_COMMAND_BYTES:
        return f"the command is {size:,} bytes; at most {MAX_COMMAND_BYTES:,} are sent"
    return None


# kdb reads a command into cmd_cur[CMD_BUFLEN], 200 bytes with the newline
# and the NUL (kernel/debug/kdb/kdb_main.c, Linux 6.12): longer input is
# cut, and control characters are line editing to it.
MAX_KDB_COMMAND = 198


def kdb_command_problem(command: str) -> str | None:
    """Why a kdb command cannot be typed at the kdb prompt, or None."""
    if not command.strip():
        return "an empty command"
    if not command.isascii() or not command.isprintable():
        return "only printable ASCII can be typed at the kdb prompt"
    if len(command) > MAX_KDB_COMMAND:
        return f"{len(command)} characters; kdb reads at most {MAX_KDB_COMMAND}"
    return None


def check_duration(seconds: float, where: Where) -> None:
    """Any time a scenario asks the harness to wait (a timeout, a sleep, a
    hold): at most MAX_TIMEOUT_S, so nothing waits past what a hang would."""
    if seconds > MAX_TIMEOUT_S:
        raise where.error(f"expected at most {MAX_TIMEOUT_S:g} seconds, got {seconds}")


def check_timeout(seconds: float, where: Where) -> None:
    """A timeout the harness can act on: above 0 (nan is not) and within
    check_duration's bound."""
    if not seconds > 0:
        raise where.error(f"expected seconds above 0, got {seconds}")
    check_duration(seconds, where)
