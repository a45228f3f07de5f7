"""Test helpers shared by integration tests."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RVHARNESS = [sys.executable, "-m", "harness.cli"]


def rvharness(*args: str, env: dict[str, str] | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([*RVHARNESS, *args], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=timeout)


def qemu_pids_mentioning(text: str) -> list[int]:
    """QEMU processes whose command line contains text (e.g. an artifact dir)."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "qemu-system" in cmd and text in cmd:
            pids.append(int(d.name))
    return pids
