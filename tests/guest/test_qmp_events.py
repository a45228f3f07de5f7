"""The stored QMP event names match what the installed QEMU's schema says."""
from __future__ import annotations

import json
import subprocess
import threading

from harness.core.arch import RISCV64
from harness.guest.qmp_events import QMP_EVENTS


def test_stored_event_names_match_the_installed_qemu() -> None:
    # quit is sent only once the schema has been read: QEMU writes the ~250 KB
    # reply to the pipe as the reader drains it, and quitting with it still
    # queued cut it at 131,070 bytes in one CI run (JSONDecodeError).
    argv = [RISCV64.qemu, "-M", "none", "-nodefaults", "-display", "none", "-qmp", "stdio"]
    with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE) as proc:
        watchdog = threading.Timer(30, proc.kill)
        watchdog.start()
        try:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(b'{"execute":"qmp_capabilities"}\n{"execute":"query-qmp-schema"}\n')
            proc.stdin.flush()
            schema = None
            for line in proc.stdout:          # the greeting, {} for the capabilities, then the schema
                reply = json.loads(line)
                if isinstance(reply.get("return"), list):
                    schema = reply["return"]
                    break
            proc.stdin.write(b'{"execute":"quit"}\n')
            proc.stdin.flush()
            proc.wait(timeout=30)
        finally:
            watchdog.cancel()
            proc.kill()
    assert schema is not None, "QEMU sent no query-qmp-schema reply"
    events = {e["name"] for e in schema if e.get("meta-type") == "event"}
    assert events == QMP_EVENTS, sorted(events ^ QMP_EVENTS)
