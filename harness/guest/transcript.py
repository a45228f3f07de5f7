"""The console transcript: what QEMU's serial line printed, kept in memory
for the console driver and written through to the artifact file."""
from __future__ import annotations

from typing import IO


class Transcript:
    """pexpect's logfile_read: every byte goes to the artifact file at once
    (so a hang or crash never loses the log) and to the in-memory transcript."""

    def __init__(self, fh: IO[str]) -> None:
        self.fh = fh
        self.chunks: list[str] = []
        self.length = 0

    def write(self, s: str) -> None:
        self.chunks.append(s)
        self.length += len(s)
        self.fh.write(s)
        self.fh.flush()

    def flush(self) -> None:
        self.fh.flush()

    def text(self, start: int = 0, end: int | None = None) -> str:
        if len(self.chunks) > 1:
            self.chunks = ["".join(self.chunks)]
        whole = self.chunks[0] if self.chunks else ""
        return whole[start:end]
