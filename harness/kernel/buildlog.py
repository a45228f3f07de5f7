"""Reading a kernel build's log while make writes it: how many files have
been compiled, out of how many the last build of the same slot compiled,
and the compiler line that explains a failure. The live display (see
harness/display/progress.py) hears about it through a Monitor."""
from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from pathlib import Path
from typing import Iterator, Protocol

# Kbuild's quiet output: one "  CC      kernel/fork.o" line per object built.
COMPILE_LINE = re.compile(r"^  (?:CC|AS) ", re.MULTILINE)
COMPILER_ERROR = re.compile(r"^.*(?:: (?:fatal )?error: |undefined reference to ).*$", re.MULTILINE)
MAKE_ERROR = re.compile(r"^make(?:\[\d+\])?: \*\*\* .*$", re.MULTILINE)
COUNT_FILE = "compiled.json"
POLL_SECONDS = 0.5


class Monitor(Protocol):
    def build_started(self, name: str, expected: int | None, log: Path) -> None: ...
    def build_advanced(self, compiled: int, line: str) -> None: ...
    def build_ended(self, ok: bool, compiled: int, failure: str | None) -> None: ...


def count_compiled(text: str) -> int:
    return len(COMPILE_LINE.findall(text))


def failure_line(text: str) -> str | None:
    """The compiler's own words when a build fails; make's line otherwise."""
    errors = COMPILER_ERROR.findall(text)
    if errors:
        return errors[-1].strip()
    makes = MAKE_ERROR.findall(text)
    return makes[0].strip() if makes else None


def expected(slot: Path) -> int | None:
    """Objects the last successful build of this slot compiled."""
    try:
        return int(json.loads((slot / COUNT_FILE).read_text())["compiled"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


@contextlib.contextmanager
def watched(monitor: Monitor | None, name: str, log: Path, slot: Path) -> Iterator[None]:
    """Tail log from its current end while the block runs make."""
    start = log.stat().st_size if log.exists() else 0
    state = {"compiled": 0, "line": ""}
    stop = threading.Event()

    def read_new() -> str:
        try:
            with open(log, "rb") as fh:
                fh.seek(start)
                return fh.read().decode(errors="replace")
        except OSError:
            return ""

    def poll() -> None:
        while not stop.wait(POLL_SECONDS):
            text = read_new()
            state["compiled"] = count_compiled(text)
            state["line"] = text.rstrip().rsplit("\n", 1)[-1].strip()
            if monitor is not None:
                monitor.build_advanced(state["compiled"], state["line"])

    if monitor is not None:
        monitor.build_started(name, expected(slot), log)
    thread = threading.Thread(target=poll, name="build-log", daemon=True)
    thread.start()
    ok = False
    try:
        yield
        ok = True
    finally:
        stop.set()
        thread.join()
        text = read_new()
        compiled = count_compiled(text)
        if ok:
            (slot / COUNT_FILE).write_text(json.dumps({"compiled": compiled, "at": time.time()}))
        if monitor is not None:
            monitor.build_ended(ok, compiled, None if ok else failure_line(text))
