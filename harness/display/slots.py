"""The live display of a parallel run: one line per VM slot (worker and
slot, the scenario and kernel, its step, for how long) and the count of
cells done. On a TTY a rich Live table on stderr; elsewhere (CI) plain
lines: one when a slot starts a cell, and (-v) one per step.

Cell labels hold "[kernel]" and step names are the user's: they are
rich Text, never markup (as markup "[default]" vanished into a style tag)."""
from __future__ import annotations

import sys
import threading
import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from harness.display.progress import NORMAL, VERBOSE, Display


class SlotsView:
    def __init__(self, display: Display, total: int, one_worker: bool = False) -> None:
        """one_worker: an in-process LocalCluster, whose single worker's
        name says nothing; slots are then just "VM 1", "VM 2"."""
        self.display = display
        self.total = total
        self.one_worker = one_worker
        self.finished = 0
        self._lock = threading.Lock()
        self._slots: dict[tuple[str, int], dict[str, Any]] = {}
        self._live: Live | None = None
        self._started = time.monotonic()
        self._printing_above: Any = None

    def name(self, worker: str, slot: int) -> str:
        return f"VM {slot}" if self.one_worker else f"{worker} VM {slot}"

    def __rich__(self) -> Table:
        t = Table(show_header=False, box=None, pad_edge=False)
        with self._lock:
            rows = sorted(self._slots.items())
            done = self.finished
        now = time.time()
        for (worker, slot), s in rows:
            if s.get("cell"):
                what = f"{s['cell']}  {s['step']}  {now - s['since']:.0f}s"
            else:
                what = "idle"
            t.add_row(Text(self.name(worker, slot)), Text(what))
        t.add_row("", Text(f"{done}/{self.total} done, {time.monotonic() - self._started:.0f}s"))
        return t

    def __enter__(self) -> "SlotsView":
        if self.display.live:
            self._live = Live(self, console=Console(file=self.display.stream), refresh_per_second=2,
                              transient=True,
                              # Result lines on stdout go above the table when it is the same terminal.
                              redirect_stdout=sys.stdout.isatty(), redirect_stderr=False)
            self._live.__enter__()
            self._printing_above = self.display.printing_above(self._live.console)
            self._printing_above.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._printing_above is not None:
            self._printing_above.__exit__(None, None, None)
            self._printing_above = None
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None

    def event(self, msg: dict[str, Any]) -> None:
        """A worker's slot event (tasks.SLOT_TOPIC)."""
        key = (str(msg.get("who")), int(msg.get("slot", 0)))
        with self._lock:
            prev = self._slots.get(key, {})
            new_cell = msg.get("cell") and msg.get("cell") != prev.get("cell")
            self._slots[key] = {"cell": msg.get("cell"), "step": msg.get("step"),
                                "since": msg.get("t", time.time()) if new_cell or not msg.get("cell")
                                else prev.get("since", time.time())}
        if self.display.live or not msg.get("cell"):
            return
        if new_cell and self.display.verbosity >= NORMAL:
            self.display._print(f"rvharness: {self.name(*key)}: {msg['cell']}")
        elif self.display.verbosity >= VERBOSE:
            self.display._print(f"rvharness: {self.name(*key)}: {msg['cell']} step '{msg.get('step')}'")

    def done_one(self) -> None:
        with self._lock:
            self.finished += 1

