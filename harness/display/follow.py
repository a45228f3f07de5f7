"""`--follow`: the guest console, live, one prefix per VM ("[kernel/scenario] ").

It reads the console.log the machine writes (and flushes) as bytes arrive,
so following never slows the console and the log stays the one record.
A boot that is retried renames console.log and starts a new one: the
follower notices the new file and moves on to it."""
from __future__ import annotations

import contextlib
import os
import sys
import threading
from pathlib import Path
from typing import Iterator, TextIO

POLL_SECONDS = 0.1


class _Follower:
    def __init__(self, log: Path, prefix: str, out: TextIO) -> None:
        self.log, self.prefix, self.out = log, prefix, out
        self.stop = threading.Event()
        self._fh = None
        self._ino: int | None = None
        self._partial = ""

    def _open(self) -> None:
        try:
            st = os.stat(self.log)
        except FileNotFoundError:
            return
        if self._ino != st.st_ino:
            if self._fh is not None:
                self._emit(self._fh.read())     # the rest of the renamed log
                self._fh.close()
            self._fh = open(self.log, encoding="utf-8", errors="replace", newline="")
            self._ino = st.st_ino

    def _emit(self, chunk: str, final: bool = False) -> None:
        text = self._partial + chunk.replace("\r", "")   # the serial console ends lines \r\r\n
        lines = text.split("\n")
        self._partial = "" if final else lines.pop()
        for line in lines if not final else [l for l in lines if l]:
            self.out.write(f"{self.prefix}{line}\n")
        if lines:
            self.out.flush()

    def pump(self, final: bool = False) -> None:
        self._open()
        if self._fh is not None:
            self._emit(self._fh.read(), final)

    def run(self) -> None:
        while not self.stop.wait(POLL_SECONDS):
            self.pump()
        self.pump(final=True)
        if self._fh is not None:
            self._fh.close()


@contextlib.contextmanager
def following(log: Path | None, prefix: str, out: TextIO | None = None) -> Iterator[None]:
    """Stream log while the block runs; a None log follows nothing."""
    if log is None:
        yield
        return
    f = _Follower(log, f"[{prefix}] ", out or sys.stdout)
    thread = threading.Thread(target=f.run, name="follow", daemon=True)
    thread.start()
    try:
        yield
    finally:
        f.stop.set()
        thread.join()
