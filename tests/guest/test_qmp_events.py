"""The stored QMP event names match what the installed QEMU's schema says."""
from __future__ import annotations

import json
import subprocess

from harness.core.arch import RISCV64
from harness.guest.qmp_events import QMP_EVENTS


def test_stored_event_names_match_the_installed_qemu() -> None:
    cmds = b'{"execute":"qmp_capabilities"}\n{"execute":"query-qmp-schema"}\n{"execute":"quit"}\n'
    proc = subprocess.run([RISCV64.qemu, "-M", "none", "-nodefaults", "-display", "none", "-qmp", "stdio"],
                          input=cmds, capture_output=True, timeout=30)
    replies = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    schema = next(r["return"] for r in replies if isinstance(r.get("return"), list))
    events = {e["name"] for e in schema if e.get("meta-type") == "event"}
    assert events == QMP_EVENTS, sorted(events ^ QMP_EVENTS)
