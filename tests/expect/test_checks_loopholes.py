"""Checks that used to pass whatever the kernel did. Each test feeds a
real /proc/interrupts capture (tests/data/interrupts) with one thing
broken and needs the check to fail."""
from __future__ import annotations

from pathlib import Path

from harness.core.yamlfile import Where
from harness.expect.checks import FAIL, PASS, evaluate
from harness.expect.observations import Observations, StepRecord
from harness.parsers import interrupts
from harness.scenario.parse import Expectation

DATA = Path(__file__).parents[1] / "data" / "interrupts"
BEFORE = (DATA / "default-4cpus.txt").read_text()
AFTER = (DATA / "default-4cpus-after-sysrq-l-cpu1.txt").read_text()
ROW = "CPU backtrace interrupts"


def _counter(after_text: str, online=(0, 1, 2, 3)) -> str:
    obs = Observations(cpus=4)
    for label, text in (("before", BEFORE), ("after", after_text)):
        obs.snapshots[label] = interrupts.parse(text)
        obs.steps[label] = StepRecord(label, "snapshot", 0, 0, 0.0, list(online), status=0,
                                      detail={"label": label})
    exp = Expectation("counter", "bt", {"row": ROW, "between": ["before", "after"],
                                        "delta": {1: 0, "others": 1}, "at_least": None, "at_most": None},
                      Where(Path("x.yaml"), 1))
    res = evaluate(exp, obs)
    return res.verdict + ": " + res.observed


def _drop_column(text: str, cpu: int) -> str:
    out = []
    for line in text.splitlines():
        parts = line.split()
        if line.strip().startswith("CPU0"):
            out.append("".join(f"{p:>11}" for p in parts if p != f"CPU{cpu}"))
            continue
        if parts and parts[0].endswith(":") and len(parts) > cpu + 1:
            del parts[cpu + 1]
            out.append(" ".join(parts))
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def test_capture_passes_as_is() -> None:
    assert _counter(AFTER).startswith(PASS)


def test_dropping_cpu3s_count_from_the_after_snapshot_fails() -> None:
    lines = AFTER.splitlines()
    lines = [" ".join(ln.split()[:4] + ln.split()[5:]) if ROW in ln else ln for ln in lines]
    got = _counter("\n".join(lines) + "\n")
    assert got.startswith(FAIL), got


def test_dropping_cpu3s_column_fails_while_cpu3_is_online() -> None:
    after = _drop_column(AFTER, 3)
    assert interrupts.parse(after).cpus == [0, 1, 2]
    got = _counter(after)
    assert got.startswith(FAIL) and "CPU 3 is online but has no column" in got, got
    # With CPU 3 really offline, its column is rightly absent.
    assert _counter(after, online=(0, 1, 2)).startswith(PASS)
