"""Live progress on the terminal: the kernel build (files compiled out of
the count the slot's last build compiled, elapsed, ETA), the package fetch
(bytes downloaded) and the runs (scenario, step, elapsed).

On a TTY this is a rich progress display on stderr; elsewhere (CI logs) it
falls back to one plain line every PLAIN_EVERY seconds, so a log shows the
build is alive without a line per file. -q keeps only errors and results,
-v adds one line per step."""
from __future__ import annotations

import contextlib
import sys
import threading
import time
from pathlib import Path
from typing import Iterator, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

PLAIN_EVERY = 15.0
QUIET, NORMAL, VERBOSE = -1, 0, 1


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}:{s:02d}"


class Display:
    """The one live display of a command. It is also the kbuild Monitor."""

    def __init__(self, verbosity: int = NORMAL, stream: TextIO | None = None,
                 live: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.verbosity = verbosity
        self.live = (self.stream.isatty() if live is None else live) and verbosity > QUIET
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._lock = threading.Lock()
        # Plain mode: what is going on now, printed every PLAIN_EVERY s.
        self._activity = ""
        self._started = 0.0
        self._last_plain = 0.0
        self._build: dict = {}
        # A live view other than the bar (outputs/slots.py) that one-off
        # lines must go above, or they garble its redraw.
        self._above: Console | None = None

    # ------------------------------------------------------------ messages

    def say(self, msg: str) -> None:
        """A one-off line (what is being built, where its log is)."""
        if self.verbosity >= NORMAL:
            self._print(f"rvharness: {msg}")

    def detail(self, msg: str) -> None:
        if self.verbosity >= VERBOSE:
            self._print(f"rvharness: {msg}")

    def error(self, msg: str) -> None:
        self._print(f"rvharness: {msg}")

    def _print(self, line: str) -> None:
        with self._lock:
            console = self._progress.console if self._progress is not None else self._above
            if console is not None:
                console.print(line, markup=False, highlight=False)
            else:
                print(line, file=self.stream, flush=True)

    @contextlib.contextmanager
    def printing_above(self, console: Console) -> Iterator[None]:
        """Lines said while the block runs go through console (a rich Live's)."""
        self._above = console
        try:
            yield
        finally:
            self._above = None

    # ------------------------------------------------------------ a live bar

    @contextlib.contextmanager
    def _bar(self, description: str, total: float | None, *columns) -> Iterator[None]:
        self._started = time.monotonic()
        self._last_plain = self._started
        if not self.live:
            yield
            return
        progress = Progress(SpinnerColumn(), TextColumn("{task.description}", markup=False), *columns,
                            console=Console(file=self.stream), transient=True,
                            # Results printed to stdout go above the bar only when
                            # stdout is the same terminal; redirected, they stay put.
                            redirect_stdout=sys.stdout.isatty(), redirect_stderr=False)
        with progress:
            self._progress = progress
            self._task = progress.add_task(description, total=total)
            try:
                yield
            finally:
                self._progress, self._task = None, None

    def _update(self, description: str | None = None, **fields) -> None:
        if self._progress is not None and self._task is not None:
            if description is not None:
                fields["description"] = description
            self._progress.update(self._task, **fields)

    def _plain_tick(self, line: str) -> None:
        """Plain mode: at most one line per PLAIN_EVERY seconds."""
        if self.live or self.verbosity < NORMAL:
            return
        now = time.monotonic()
        if now - self._last_plain >= PLAIN_EVERY:
            self._last_plain = now
            print(f"rvharness: {line}", file=self.stream, flush=True)

    # ------------------------------------------------------------ builds (buildlog.Monitor)

    def build_started(self, name: str, expected: int | None, log: Path) -> None:
        self._build = {"name": name, "expected": expected, "cm": None}
        cm = self._bar(f"building {name}", expected, BarColumn(), MofNCompleteColumn(),
                       TextColumn("files"), TimeElapsedColumn(), TextColumn("ETA"),
                       TimeRemainingColumn())
        cm.__enter__()
        self._build["cm"] = cm

    def build_advanced(self, compiled: int, line: str) -> None:
        b = self._build
        expected = b.get("expected")
        if expected is not None and compiled > expected:
            expected = None            # more to do than last time: no honest ETA
        self._update(completed=compiled, total=expected)
        elapsed = time.monotonic() - self._started
        if expected is not None:
            count = f"{compiled}/{expected} files"
            eta = f", ETA {_clock(elapsed / compiled * (expected - compiled))}" if compiled else ", ETA -"
        else:
            eta, count = "", f"{compiled} files (no earlier build of this slot to compare)"
        self._plain_tick(f"building {b.get('name')}: {count}, {_clock(elapsed)} elapsed{eta}")

    def build_ended(self, ok: bool, compiled: int, failure: str | None) -> None:
        cm = self._build.get("cm")
        if cm is not None:
            cm.__exit__(None, None, None)
        elapsed = time.monotonic() - self._started
        name = self._build.get("name")
        if ok:
            self.detail(f"compiled {compiled} files for {name} in {_clock(elapsed)}")
        elif failure:
            self.error(f"build of {name} failed after {compiled} files: {failure}")

    # ------------------------------------------------------------ fetch

    @contextlib.contextmanager
    def fetching(self, what: str, directory: Path) -> Iterator[None]:
        """Bytes that have arrived under directory while the block downloads."""
        stop = threading.Event()

        def size() -> int:
            total = 0
            for p in directory.rglob("*"):
                try:
                    total += p.stat().st_size if p.is_file() else 0
                except OSError:
                    pass
            return total

        before = size()

        def poll() -> None:
            while not stop.wait(0.5):
                got = max(0, size() - before)
                self._update(completed=got)
                self._plain_tick(f"fetching {what}: {got / 1e6:.1f} MB")

        with self._bar(f"fetching {what}", None, DownloadColumn(), TransferSpeedColumn(),
                       TimeElapsedColumn()):
            thread = threading.Thread(target=poll, daemon=True)
            thread.start()
            try:
                yield
            finally:
                stop.set()
                thread.join()

    # ------------------------------------------------------------ runs

    @contextlib.contextmanager
    def running(self, total: int) -> Iterator["RunStatus"]:
        status = RunStatus(self, total)
        with self._bar("starting", total, BarColumn(), MofNCompleteColumn(), TextColumn("runs"),
                       TimeElapsedColumn()):
            ticker = threading.Thread(target=status.tick_until_done, daemon=True)
            ticker.start()
            try:
                yield status
            finally:
                status.done.set()
                ticker.join()


class RunStatus:
    """Which scenario and step run now; fed by the run loop and the runner's on_step."""

    def __init__(self, display: Display, total: int) -> None:
        self.display = display
        self.total = total
        self.finished = 0
        self.scenario = ""
        self.step = ""
        self.step_started = time.monotonic()
        self.scenario_started = time.monotonic()
        self.done = threading.Event()

    def _describe(self) -> str:
        step = f" step '{self.step}' {time.monotonic() - self.step_started:.0f}s" if self.step else " booting"
        return f"{self.scenario}{step} ({time.monotonic() - self.scenario_started:.0f}s)"

    def start(self, kernel: str, scenario: str) -> None:
        self.scenario, self.step = f"{scenario} [{kernel}]", ""
        self.scenario_started = self.step_started = time.monotonic()
        self.display._update(self._describe())
        self.display.detail(f"run {scenario} on {kernel}")

    def on_step(self, step) -> None:
        self.step, self.step_started = step.name, time.monotonic()
        self.display._update(self._describe())
        self.display.detail(f"  step '{step.name}' ({step.kind})")

    def end(self) -> None:
        self.finished += 1
        self.step = ""
        self.display._update(completed=self.finished)

    def tick_until_done(self) -> None:
        while not self.done.wait(1.0):
            self.display._update(self._describe())
            if self.scenario:
                self.display._plain_tick(f"[{self.finished + 1}/{self.total}] {self._describe()}")
