"""Driving the guest's serial console: the ready marker, shell commands with
sentinels and exit status, sysrq, and crash detection while waiting."""
from __future__ import annotations

import re
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import pexpect

from harness.core.errors import (
    BootTimeout,
    ConsoleTimeout,
    GuestCommandRejected,
    GuestCrashed,
    QemuExited,
)
from harness.guest.console_wire import (
    SHELL_RESTARTED,
    SYNTAX_ERROR,
    end_pattern,
    start_pattern,
    status_of,
    wire_lines,
)
from harness.guest.transcript import Transcript
from harness.scenario.limits import command_problem

READY = re.compile(r"rvharness-ready cpus=(\d+) kernel=(\S+)")
KDB_PROMPT = r"\[(\d+)\]kdb> "
KDB_MORE = r"more> "
KDB_GO_AGAIN = r"type go a second time"

# Seeing one of these while waiting for anything ends the wait at once.
# Line-wise patterns wait for the line's end, so a title is never cut at
# the point the console happened to have reached.
CRASH_PATTERNS: tuple[tuple[str, str], ...] = (
    ("panic", r"Kernel panic - not syncing: [^\r\n]*(?=[\r\n])"),
    ("oops", r"Unable to handle kernel [^\r\n]*(?=[\r\n])"),
    ("oops", r"(?:Oops|Kernel BUG)(?: - [^\r\n\[]*)? \[#\d+\]"),
    ("bug", r"kernel BUG at [^\r\n]*(?=[\r\n])"),
)

# A kernel console line: "[    1.234567][    T1] text" (timestamp, caller).
KMSG_LINE = re.compile(r"\[\s*\d+\.\d+\](?:\[\s*[TC]\d+\])? [^\n]*\n?")
SYSRQ_KEYS = re.compile(r"^[0-9a-z]$")
WATCH_SLICE = 0.25


@dataclass
class Pending:
    command: str
    seq: int
    start: int
    t0: float
    started: bool = False
    out_start: int = 0
    transfer: float = 0.0       # extra seconds allowed for the text to reach the shell
    run_t0: float = 0.0         # when the shell started the command


@dataclass
class CommandResult:
    command: str
    status: int
    raw: str            # everything between the sentinels, kernel messages included
    output: str         # raw with kernel console lines removed
    start: int          # transcript offsets of the step
    end: int
    seconds: float


class Console:
    def __init__(self, child: pexpect.spawn, tee: Transcript, argv: Sequence[str],
                 log_path: Path) -> None:
        self.child = child
        self.tee = tee
        self.argv = list(argv)
        self.log_path = log_path
        self.cpus: int | None = None
        self.kernel_release = ""
        self._seq = 0
        # Crash kinds a step expects (e.g. an LKDTM WARNING); others stay fatal.
        self.allowed_crashes: set[str] = set()
        # Called about every WATCH_SLICE s while waiting; raises to end the
        # wait (the runner's check for a QMP GUEST_PANICKED event).
        self.watch: Callable[[], None] | None = None

    @property
    def position(self) -> int:
        return self.tee.length

    def text(self, start: int = 0, end: int | None = None) -> str:
        return self.tee.text(start, end)

    # ------------------------------------------------------------ waiting

    def expect(self, patterns: Sequence[str], timeout: float, what: str,
               timeout_error: type[ConsoleTimeout] = ConsoleTimeout) -> re.Match:
        """Wait for one of patterns; a crash, QEMU exiting or the timeout
        raise typed errors that carry the console excerpt."""
        crash = [(k, p) for k, p in CRASH_PATTERNS if k not in self.allowed_crashes]
        compiled = [re.compile(p) for p in patterns] + [re.compile(p) for _, p in crash]
        deadline = time.monotonic() + timeout
        try:
            while True:
                left = max(0.0, deadline - time.monotonic())
                chunk = min(WATCH_SLICE, left) if self.watch is not None else left
                idx = self.child.expect(compiled + [pexpect.EOF, pexpect.TIMEOUT], timeout=chunk)
                if idx <= len(compiled) or self.watch is None:
                    break
                self.watch()
                if time.monotonic() >= deadline:
                    break
        except OSError as exc:
            raise QemuExited(f"console lost while waiting for {what}: {exc}", self.argv,
                             self.log_path, self._tail()) from None
        if idx < len(patterns):
            return self.child.match
        if idx < len(compiled):
            match = self.child.match
            self._drain(1.5)
            title = match.group(0).strip()
            start = max(0, self.tee.length - 20000)
            raise GuestCrashed(title, self._crash_text(title, start), self.argv, self.log_path)
        if idx == len(compiled):
            self.child.close()
            raise QemuExited(f"QEMU exited (status {self.child.exitstatus}, signal "
                             f"{self.child.signalstatus}) while waiting for {what}",
                             self.argv, self.log_path, self._tail())
        raise timeout_error(f"timed out after {timeout:g} s waiting for {what}", self.argv,
                            self.log_path, self._tail())

    def _drain(self, quiet: float, limit: float = 5.0) -> None:
        """Read until the console has been quiet for `quiet` seconds."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                self.child.read_nonblocking(65536, timeout=quiet)
            except pexpect.TIMEOUT:
                return
            except (pexpect.EOF, OSError):
                return

    def settle(self, quiet: float = 0.15, limit: float = 3.0) -> None:
        """Let asynchronous kernel output (backtraces from other CPUs) land
        before the next step starts."""
        self._drain(quiet, limit)

    def _crash_text(self, title: str, start: int) -> str:
        text = self.text(start)
        at = text.rfind(title)
        # Start a few dozen lines before the title: the report header is there.
        head = text.rfind("\n", 0, max(0, at))
        lines_before = text[:head].splitlines()[-40:] if head > 0 else []
        return "\n".join(lines_before + text[head:].splitlines()).strip()

    def _tail(self, chars: int = 3000) -> str:
        return self.text(max(0, self.tee.length - chars))

    # ------------------------------------------------------------ actions

    def wait_ready(self, timeout: float) -> None:
        m = self.expect([READY.pattern], timeout, "the guest's ready line", BootTimeout)
        self.cpus = int(m.group(1))
        self.kernel_release = m.group(2)

    def send(self, data: str) -> None:
        self.child.send(data)

    def begin(self, command: str | Sequence[str]) -> "Pending":
        """Send a shell command without waiting for it (kdb entry, background
        crash points); finish() collects its status later. The command goes
        through console_wire: any text, written to a file in the guest and
        run by a fixed wrapper that prints the sentinels."""
        if not isinstance(command, str):
            command = shlex.join(command)
        if problem := command_problem(command):     # `check` refused it already
            raise ValueError(f"console command not sent: {problem}")
        self._seq += 1
        n = self._seq
        wire = "".join(line + "\n" for line in wire_lines(command, n))
        pending = Pending(command, n, self.position, time.monotonic(),
                          transfer=transfer_allowance(len(wire)))
        self.child.send(wire)
        return pending

    def started(self, p: "Pending", timeout: float) -> None:
        """Wait until the shell has begun running p's command. A long text
        gets more time to arrive (the guest's line editor echoes it byte by
        byte): a step's timeout counts from the start of the command."""
        if not p.started:
            m = self.expect([start_pattern(p.seq), re.escape(SHELL_RESTARTED)], timeout + p.transfer,
                            f"command `{_short(p.command)}` to start")
            if m.re.pattern != start_pattern(p.seq):
                # The shell ended so fast that the tty's hangup dropped the
                # start sentinel still waiting in its output buffer.
                self._shell_ended(p, "")
            p.started = True
            p.run_t0 = time.monotonic()
            p.out_start = self._match_end()

    def finish(self, p: "Pending", timeout: float) -> CommandResult:
        self.started(p, timeout)
        remaining = max(0.1, timeout - (time.monotonic() - p.run_t0))
        m = self.expect([end_pattern(p.seq), re.escape(SHELL_RESTARTED)], remaining,
                        f"command `{_short(p.command)}`")
        end = self._match_end()
        raw = self.text(p.out_start, end - len(self.child.after)).replace("\r", "")
        if m.re.pattern != end_pattern(p.seq):
            self._shell_ended(p, raw)
        status = status_of(m)
        if status == 2 and (bad := SYNTAX_ERROR.search(raw)):
            raise GuestCommandRejected(f"the guest shell rejected command `{_short(p.command)}`: "
                                       f"{bad.group(0)}")
        return CommandResult(p.command, status, raw, KMSG_LINE.sub("", raw), p.start,
                             end, time.monotonic() - p.t0)

    def _shell_ended(self, p: "Pending", raw: str) -> None:
        """The command ended the console shell (exit, exec): when its session
        leader exits the kernel hangs the serial tty up, dropping output not
        yet sent; init starts a new shell. A scenario error, not a hang."""
        raise GuestCommandRejected(f"command `{_short(p.command)}` ended the console shell "
                                   f"(exit or exec?); init started a new one"
                                   + (f"; its output: {raw.strip()[-300:]!r}" if raw.strip() else ""))

    def _match_end(self) -> int:
        """Transcript offset just past the last match: pexpect has already
        logged what it read beyond the match, which is still in its buffer."""
        return self.position - len(self.child.buffer)

    def run(self, command: str | Sequence[str], timeout: float = 30.0) -> CommandResult:
        """Run a shell command; return its output and exit status. A list is
        quoted word by word; a string is passed to the guest shell as is."""
        return self.finish(self.begin(command), timeout)

    # ------------------------------------------------------------ kdb

    def kdb_enter(self, cpu: int, timeout: float) -> tuple[Pending, int]:
        """sysrq g from cpu; returns the pending shell command (it completes
        after go) and the CPU kdb says it is on."""
        p = self.begin(["taskset", "-c", str(cpu), "sh", "-c", "echo g > /proc/sysrq-trigger"])
        self.started(p, timeout)
        m = self.expect([KDB_PROMPT], timeout, "the kdb prompt")
        on = int(m.group(1))
        self.kdb_command("set LINES 10000", timeout)  # no more> paging
        return p, on

    def kdb_command(self, command: str, timeout: float) -> str:
        start = self._match_end()
        self.child.send(command + "\r")
        deadline = time.monotonic() + timeout
        while True:
            m = self.expect([KDB_PROMPT, KDB_MORE], max(0.1, deadline - time.monotonic()),
                            f"kdb command `{command}`")
            if m.re.pattern == KDB_PROMPT:
                return self.text(start, self._match_end()).replace("\r", "")
            self.child.send(" ")

    def kdb_go(self, p: Pending, timeout: float, again: bool = True) -> tuple[bool, CommandResult | None]:
        """Leave kdb. kdb refuses the first go when a CPU did not answer the
        round-up; then go is sent again, unless again is False: then kdb
        keeps the machine and there is no shell result (None).
        Returns (refused, the shell result)."""
        self.child.send("go\r")
        m = self.expect([KDB_GO_AGAIN, end_pattern(p.seq)], timeout, "kdb to resume after go")
        refused = m.re.pattern == KDB_GO_AGAIN
        if refused and not again:
            self.expect([KDB_PROMPT], timeout, "the kdb prompt after the go refusal")
            return refused, None
        if refused:
            self.expect([KDB_PROMPT], timeout, "the kdb prompt after the go refusal")
            self.child.send("go\r")
        else:
            # Put the sentinel back in front of finish(): it was consumed above.
            self.child.buffer = self.child.after + self.child.buffer
        return refused, self.finish(p, timeout)

    def interrupt(self) -> None:
        """Ctrl-C to the foreground command, e.g. after a timeout."""
        self.child.sendcontrol("c")

    def sysrq(self, key: str, cpu: int | None = None, timeout: float = 30.0) -> CommandResult:
        """Write key to /proc/sysrq-trigger, pinned to cpu with taskset."""
        if not SYSRQ_KEYS.match(key):
            raise ValueError(f"invalid sysrq key {key!r}")
        inner = ["sh", "-c", f"echo {key} > /proc/sysrq-trigger"]
        argv = (["taskset", "-c", str(cpu)] if cpu is not None else []) + inner
        result = self.run(argv, timeout)
        self.settle()
        result.end = self.position
        return result

    def serial_break(self, key: str) -> None:
        """BREAK on the serial line (Ctrl-A b to the QEMU mux), then the sysrq
        key: the handler runs in the UART interrupt, not in a task."""
        if not SYSRQ_KEYS.match(key):
            raise ValueError(f"invalid sysrq key {key!r}")
        self.child.send("\x01b")
        time.sleep(0.05)
        self.child.send(key)


# The guest's line editor takes the text in at 0.7-2 KB/s on the 2-core
# development machine (0.7 under a kernel build; bench/console_overhead):
# allow 200 bytes/s and 2 s before a long text counts against the timeout.
TRANSFER_BYTES_PER_S = 200
SHORT_TEXT = 400


def transfer_allowance(wire_bytes: int) -> float:
    return 0.0 if wire_bytes <= SHORT_TEXT else 2.0 + wire_bytes / TRANSFER_BYTES_PER_S


def _short(command: str, limit: int = 120) -> str:
    """A command for an error message: one line, cut."""
    one = command.replace("\n", "\\n")
    return one if len(one) <= limit else one[:limit - 3] + "..."


def idle(console: Console, seconds: float) -> None:
    """Let time pass on the guest while still watching for crashes."""
    try:
        console.expect([], seconds, f"{seconds:g} s of guest time")
    except ConsoleTimeout:
        return
