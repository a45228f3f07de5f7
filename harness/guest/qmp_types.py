"""What a QmpClient caller catches and receives: the typed QMP/HMP errors
and the values the client returns (events, run state, vCPUs)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from harness.core.errors import MachineError

# --------------------------------------------------------------------- errors

class QmpError(MachineError):
    """Base of every QMP failure; carries the QEMU argv and console log path
    when the client was given them."""


class QmpCommandError(QmpError):
    """QEMU answered a command with an error response."""

    def __init__(self, cmd: str, arguments: Mapping[str, object] | None, error_class: str,
                 desc: str, argv: Sequence[str] = (), console_log: Path | None = None) -> None:
        self.cmd = cmd
        self.arguments = dict(arguments or {})
        self.error_class = error_class
        self.desc = desc
        super().__init__(f"QMP {cmd}: {error_class}: {desc}", argv, console_log)


class QmpCommandNotFound(QmpCommandError):
    """QEMU has no such command (error class CommandNotFound)."""


class QmpCommandRefused(QmpCommandError):
    """QEMU knows the command but refused it: unsupported here (inject-nmi
    on riscv), device missing (balloon: DeviceNotActive), bad arguments."""


class HmpError(QmpError):
    """An HMP command failed; QEMU said so in the reply text."""

    def __init__(self, command_line: str, text: str, argv: Sequence[str] = (),
                 console_log: Path | None = None) -> None:
        self.command_line = command_line
        self.text = text
        first = text.strip().splitlines()[0] if text.strip() else ""
        super().__init__(f"HMP `{command_line}` failed: {first}", argv, console_log, text)


class QmpConnectionLost(QmpError):
    """The QMP socket is gone: QEMU exited or was killed, or QEMU exited
    before its socket answered."""


class QmpTimeout(QmpError):
    """No answer, event or connection within the time allowed."""


# --------------------------------------------------------------------- data

@dataclass(frozen=True)
class QmpEvent:
    seq: int                    # 0-based position in the client's event list
    name: str                   # "STOP", "SHUTDOWN", ...
    data: dict[str, Any]
    t: float                    # host monotonic seconds since the connection was opened
    wall: float                 # host wall clock (time.time()) when it arrived
    qemu_ts: float | None       # QEMU's own timestamp (wall clock, seconds)

    def to_json(self) -> str:
        return json.dumps({"seq": self.seq, "event": self.name, "t": round(self.t, 6),
                           "wall": round(self.wall, 6), "qemu_ts": self.qemu_ts,
                           "data": self.data}, sort_keys=True, default=str)


@dataclass(frozen=True)
class VmStatus:
    status: str                 # "prelaunch", "running", "paused", "shutdown", ...
    running: bool


@dataclass(frozen=True)
class VCpu:
    index: int
    thread_id: int
    qom_path: str
    props: dict[str, Any]
    target: str
