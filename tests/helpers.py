"""Test helpers shared by integration tests."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RVHARNESS = [sys.executable, "-m", "harness.cli"]
# A scenario's verdict when the kernel did what the scenario wants: a pass,
# or a pass on a retry (FLAKY) after a boot missed SMP bring-up, which 3 of
# 203 boots did at -j 2 (docs/measurements.md §bringup). A FAIL or an ERROR
# is neither; tests about the retry itself assert FLAKY exactly.
PASSED = ("pass", "flaky")


def rvharness(*args: str, env: dict[str, str] | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([*RVHARNESS, *args], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=timeout)


def _processes() -> list[tuple[int, str, str]]:
    """(pid, command line, /proc stat line) of every process readable now."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (d / "stat").read_text()
        except OSError:
            continue
        out.append((int(d.name), cmd, stat))
    return out


def qemu_pids_mentioning(text: str) -> list[int]:
    """QEMU processes whose command line contains text (e.g. an artifact dir)."""
    return [pid for pid, cmd, _ in _processes() if "qemu-system" in cmd and text in cmd]


def qemu_children() -> list[int]:
    """Live (non-zombie) QEMU processes this test process started."""
    pids = []
    for pid, cmd, stat in _processes():
        state, ppid = stat[stat.rindex(")") + 2:].split()[:2]
        if int(ppid) == os.getpid() and state != "Z" and "qemu-system" in cmd:
            pids.append(pid)
    return pids
