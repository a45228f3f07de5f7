"""A synchronous QMP client for the run's QEMU: commands, HMP, typed errors,
and a timestamped record of every asynchronous event.

    with QmpClient.for_machine(machine) as qmp:
        mark = qmp.mark()
        qmp.stop()
        qmp.wait_event("STOP", 2.0, since=mark)
        pcs = [r.pc for r in qmp.registers()]

Design: qemu.qmp's QMPClient runs on a private asyncio event loop in a
daemon thread, and the public methods submit coroutines to it with
run_coroutine_threadsafe and bounded waits. The legacy synchronous wrapper
(qemu.qmp.legacy.QEMUMonitorProtocol) was not used because it only runs
the event loop while the caller is inside one of its calls: an event that
arrives while the harness is busy elsewhere (waiting on the serial console
for 10 s, say) would sit unread in the socket, get its host timestamp late
and reach qmp-events.jsonl late or never if QEMU then dies. It also installs
an event loop on the caller's thread. With the background loop every event
is read, stamped and written the moment QEMU sends it, and a lost
connection is noticed at once (the reader hits EOF), not at the next call.

Measured on QEMU 7.2 riscv64 -M virt (see docs/qmp.md): HMP errors come back
as text inside a successful QMP reply, and not always prefixed "Error:" (an
unknown HMP command answers "unknown command: '...'", `cpu 99` answers
"invalid CPU index"), so hmp() checks a list of patterns (HMP_ERROR_PATTERNS).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Callable, Coroutine, Iterable, Mapping, Sequence, TypeVar

from qemu.qmp import EventListener, QMPClient
from qemu.qmp.error import QMPError
from qemu.qmp.protocol import ConnectError, Runstate, StateError
from qemu.qmp.qmp_client import ExecInterruptedError, ExecuteError

from harness.core.errors import MachineError

if TYPE_CHECKING:
    from harness.guest.machine import Machine

T = TypeVar("T")

EVENTS_FILE = "qmp-events.jsonl"

# qemu.qmp logs at ERROR when QEMU goes away ("Task.Reader: EOFError"); the
# harness reports that as QmpConnectionLost. A NullHandler keeps Python's
# last-resort handler from printing it on stderr; the records still reach
# any handler the application configured.
_QMP_LOG_NAME = "rvharness"
logging.getLogger(f"qemu.qmp.protocol.{_QMP_LOG_NAME}").addHandler(logging.NullHandler())

# HMP reports failures as plain text in a successful QMP reply. "Error: " is
# what hmp_handle_error() prints; the others are the HMP parser's and
# individual commands' own messages, as seen on QEMU 7.2.
HMP_ERROR_PATTERNS: tuple[re.Pattern[str], ...] = tuple(re.compile(p, re.M) for p in (
    r"^Error: ",
    r"^unknown command: ",
    r"^Try \"help [^\"]*\" for more information",
    r"^invalid CPU index",
))

# Commands that query-commands lists although they may not work, and how
# supports() tries them. Trying inject-nmi *executes* it: on riscv QEMU 7.2
# refuses it ("this feature or command is not currently supported") without
# side effects, but on an architecture that implements it (x86, s390x, arm
# with a GIC that supports it) the guest really receives an NMI.
PROBES: dict[str, tuple[str, Mapping[str, object]]] = {
    "inject-nmi": ("inject-nmi", {}),
    # Listed on every machine; refused (DeviceNotActive) without a balloon device.
    "balloon": ("query-balloon", {}),
    "query-balloon": ("query-balloon", {}),
}


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


@dataclass(frozen=True)
class CpuRegisters:
    index: int                  # from the "CPU#N" header
    regs: dict[str, int] = field(repr=False)   # every register printed; "x1/ra" as "x1" and "ra"

    @property
    def pc(self) -> int:
        return self.regs["pc"]

    @property
    def hartid(self) -> int | None:
        return self.regs.get("mhartid")

    def __getitem__(self, name: str) -> int:
        return self.regs[name]


_CPU_HEADER = re.compile(r"^CPU#(\d+)\s*$", re.M)
_HEX = re.compile(r"^[0-9a-fA-F]+$")
# aarch64's NAME=value tokens (no spaces round the "="), split into a pair.
_NAME_EQ_VALUE = re.compile(r"\b([A-Za-z][A-Za-z0-9_]*)=([0-9a-fA-F]+)\b")


def parse_info_registers(text: str) -> list[CpuRegisters]:
    """Parse `info registers [-a]` output: a "CPU#N" line, then lines of
    `name value` pairs, values in hex. QEMU's riscv target prints
    ` pc       ffffffff80001234`, ` x1/ra    ... x2/sp    ...`, ` V      =   0`;
    its aarch64 target ` PC=ffff80000801234c X00=... X30=... SP=...`
    (target/arm/cpu.c aarch64_cpu_dump_state). Every name is also stored
    lower-cased ("PC" as "pc", "X30" as "x30"), so callers need one spelling."""
    text = _NAME_EQ_VALUE.sub(r"\1 \2", text.replace("\r", ""))
    headers = list(_CPU_HEADER.finditer(text))
    cpus = []
    for i, h in enumerate(headers):
        end = headers[i + 1].start() if i + 1 < len(headers) else len(text)
        regs: dict[str, int] = {}
        for line in text[h.end():end].splitlines():
            tokens = [t for t in line.split() if t != "="]
            if len(tokens) < 2 or len(tokens) % 2:
                continue
            pairs = list(zip(tokens[0::2], tokens[1::2]))
            if not all(_HEX.match(v) for _, v in pairs):
                continue
            for name, value in pairs:
                for alias in name.split("/"):
                    regs[alias] = regs[alias.lower()] = int(value, 16)
        cpus.append(CpuRegisters(int(h.group(1)), regs))
    return cpus


def _pid_alive(pid: int) -> bool:
    """True while pid runs; a zombie (exited, not yet reaped) counts as dead."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:][:1] not in (b"Z", b"X")


class _Recorder(EventListener):
    """Receives every event on the loop thread as the reader task parses it."""

    def __init__(self, sink: Callable[[Mapping[str, Any]], None]) -> None:
        super().__init__()
        self._sink = sink

    async def put(self, event: Mapping[str, Any]) -> None:  # noqa: D401 - qemu.qmp hook
        self._sink(event)


# --------------------------------------------------------------------- client

class QmpClient:
    """Synchronous QMP client. Every call is bounded: commands by
    `command_timeout` (or execute(..., _timeout=)), connecting by
    `connect_timeout`, close() by a few seconds whatever QEMU does."""

    def __init__(self, socket_path: Path | str, artifacts: Path | None = None, *,
                 connect_timeout: float = 10.0, command_timeout: float = 10.0,
                 pid: int | None = None, argv: Sequence[str] = (),
                 console_log: Path | None = None, events_file: str = EVENTS_FILE) -> None:
        self.socket_path = Path(socket_path)
        self.artifacts = artifacts
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.pid = pid
        self.argv = list(argv)
        self.console_log = console_log
        self.events_path = artifacts / events_file if artifacts is not None else None
        self.greeting: dict[str, Any] | None = None
        self.connected_at = 0.0         # time.monotonic() when the connection opened

        self._cond = threading.Condition()
        self._events: list[QmpEvent] = []
        self._lost = False
        self._closed = False
        self._close_lock = threading.Lock()
        self._fh: IO[str] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._qmp: QMPClient | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._commands: frozenset[str] | None = None
        self._supports: dict[str, bool] = {}

    @classmethod
    def for_machine(cls, machine: "Machine", **kwargs: Any) -> "QmpClient":
        """A client for a started harness.guest.machine.Machine (not yet connected)."""
        pid = machine.child.pid if machine.child is not None else None
        return cls(machine.qmp_socket, machine.artifacts, pid=pid, argv=machine.argv,
                   console_log=machine.console_log, **kwargs)

    # ------------------------------------------------------------ plumbing

    def _err(self, cls: type[QmpError], message: str, excerpt: str = "") -> QmpError:
        return cls(message, self.argv, self.console_log, excerpt)

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run coro on the loop thread; TimeoutError after `timeout` seconds
        (the coroutine is then cancelled on the loop)."""
        assert self._loop is not None
        fut = asyncio.run_coroutine_threadsafe(asyncio.wait_for(coro, timeout), self._loop)
        try:
            return fut.result(timeout + 2.0)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise TimeoutError(f"no result within {timeout:g} s") from None

    def _start_loop(self) -> None:
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def main() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=main, name=f"qmp:{self.socket_path.name}",
                                        daemon=True)
        self._thread.start()
        ready.wait(5.0)

    def _record(self, msg: Mapping[str, Any]) -> None:
        """Loop thread: stamp, keep and write one event. Never raises (an
        exception here would kill qemu.qmp's reader task)."""
        try:
            now_mono, now_wall = time.monotonic(), time.time()
            ts = msg.get("timestamp") or {}
            qemu_ts = None
            if "seconds" in ts:
                qemu_ts = ts["seconds"] + ts.get("microseconds", 0) / 1e6
            with self._cond:
                ev = QmpEvent(len(self._events), str(msg.get("event")), dict(msg.get("data") or {}),
                              now_mono - self.connected_at, now_wall, qemu_ts)
                self._events.append(ev)
                if self._fh is not None:
                    self._fh.write(ev.to_json() + "\n")
                    self._fh.flush()
                self._cond.notify_all()
            if self._qmp is not None:
                self._qmp.events.clear()   # the library's default listener would grow forever
        except Exception:  # noqa: BLE001 - see docstring
            pass

    def _mark_lost(self) -> None:
        with self._cond:
            self._lost = True
            self._cond.notify_all()

    async def _watch(self, qmp: QMPClient) -> None:
        while qmp.runstate == Runstate.RUNNING:
            await qmp.runstate_changed()
        self._mark_lost()

    async def _attempt(self) -> None:
        qmp = QMPClient(_QMP_LOG_NAME)
        qmp.register_listener(_Recorder(self._record))
        self.connected_at = time.monotonic()
        await qmp.connect(str(self.socket_path))
        self._qmp = qmp
        self._watch_task = asyncio.get_running_loop().create_task(self._watch(qmp))

    def _describe_process(self, settle: float = 0.0) -> str:
        """" (QEMU pid N has exited)" or "... still running". settle: how
        long to let a dying QEMU finish exiting (its socket closes a moment
        before the kernel marks it a zombie)."""
        if self.pid is None:
            return ""
        deadline = time.monotonic() + settle
        while _pid_alive(self.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        return f" (QEMU pid {self.pid} {'still running' if _pid_alive(self.pid) else 'has exited'})"

    # ------------------------------------------------------------ lifecycle

    def connect(self) -> "QmpClient":
        """Connect, retrying until connect_timeout while the socket does not
        exist yet or refuses. QmpConnectionLost when QEMU (pid) exits first,
        QmpTimeout at the deadline."""
        if self._qmp is not None:
            return self
        if self._closed:
            raise self._err(QmpError, "QMP client already closed")
        if self.events_path is not None:
            self.events_path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.events_path, "a", encoding="utf-8")
        self._start_loop()
        deadline = time.monotonic() + self.connect_timeout
        last: BaseException | None = None
        try:
            while True:
                if self.pid is not None and not _pid_alive(self.pid):
                    raise self._err(QmpConnectionLost, f"QEMU (pid {self.pid}) exited before its "
                                    f"QMP socket {self.socket_path} answered")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    why = f": {last}" if last else " (socket never appeared)"
                    raise self._err(QmpTimeout, f"no QMP connection to {self.socket_path} within "
                                    f"{self.connect_timeout:g} s{why}")
                if self.socket_path.exists():
                    try:
                        self._run(self._attempt(), remaining)
                        break
                    except TimeoutError:
                        last = TimeoutError("connected but no QMP greeting (another client?)")
                        continue
                    except ConnectError as exc:
                        last = exc          # e.g. refused: QEMU not listening yet
                time.sleep(0.01)
        except BaseException:
            self.close()
            raise
        assert self._qmp is not None
        g = self._qmp.greeting
        self.greeting = dict(g._asdict()) if g is not None else None  # noqa: SLF001
        return self

    def __enter__(self) -> "QmpClient":
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Disconnect and stop the loop thread; idempotent, returns within
        about 5 s whatever state QEMU is in. Recorded events stay readable."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        loop, thread, qmp = self._loop, self._thread, self._qmp
        if loop is not None and thread is not None and thread.is_alive():
            if qmp is not None:
                try:
                    self._run(self._disconnect(qmp), 2.0)
                except Exception:  # noqa: BLE001 - close() must not raise
                    pass

            def shutdown() -> None:
                # Runs as a plain callback on the loop: cancel what is left
                # (the watcher; qemu.qmp's tasks if disconnect hung), give the
                # cancellations a moment to unwind, then stop the loop.
                tasks = asyncio.all_tasks(loop)
                for task in tasks:
                    task.cancel()
                loop.call_later(0.05 if tasks else 0.0, loop.stop)

            loop.call_soon_threadsafe(shutdown)
            thread.join(2.0)
            if not thread.is_alive():
                loop.close()
        with self._cond:
            self._lost = True
            if self._fh is not None:
                self._fh.close()
                self._fh = None
            self._cond.notify_all()

    @staticmethod
    async def _disconnect(qmp: QMPClient) -> None:
        if qmp.runstate != Runstate.IDLE:
            try:
                await qmp.disconnect()
            except Exception:  # noqa: BLE001 - EOFError etc. when QEMU is gone
                pass

    @property
    def connected(self) -> bool:
        return self._qmp is not None and not self._lost

    def wait_closed(self, timeout: float) -> None:
        """Wait until QEMU closes the connection (it exits after quit, or
        after system_reset/guest power-off with -no-reboot)."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._lost, timeout):
                raise self._err(QmpTimeout, f"QMP connection still open after {timeout:g} s"
                                f"{self._describe_process()}")

    # ------------------------------------------------------------ events

    @property
    def events(self) -> list[QmpEvent]:
        with self._cond:
            return list(self._events)

    def mark(self) -> int:
        """Position to pass as wait_event(since=...): later events only."""
        with self._cond:
            return len(self._events)

    def wait_event(self, name: str | Iterable[str], timeout: float,
                   predicate: Callable[[QmpEvent], bool] | None = None,
                   since: int = 0) -> QmpEvent:
        """The first event named `name` (or any of several names) at
        position >= since that satisfies predicate, received already or
        within timeout seconds. since=0 searches everything since connect;
        take mark() before the action to skip older ones. QmpTimeout if none
        arrives; QmpConnectionLost at once if the connection is gone
        (no further event can come)."""
        names = {name} if isinstance(name, str) else set(name)
        what = "/".join(sorted(names))
        deadline = time.monotonic() + timeout
        pos = since
        while True:
            with self._cond:
                # Wait for something new, the connection's end or the deadline.
                self._cond.wait_for(lambda: len(self._events) > pos or self._lost,
                                    max(0.0, deadline - time.monotonic()))
                fresh, lost = self._events[pos:], self._lost
            pos += len(fresh)
            # The predicate runs without the lock: it may call this client.
            for ev in fresh:
                if ev.name in names and (predicate is None or predicate(ev)):
                    return ev
            if lost:
                raise self._err(QmpConnectionLost, f"QMP connection lost while waiting for "
                                f"{what}{self._describe_process(settle=0.5)}", self._seen(since))
            if time.monotonic() >= deadline:
                raise self._err(QmpTimeout, f"no {what} event within {timeout:g} s",
                                self._seen(since))

    def _seen(self, since: int) -> str:
        seen = [f"{e.t:.3f} {e.name}" for e in self.events[since:]]
        return "events since mark: " + (", ".join(seen[-20:]) if seen else "none")

    # ------------------------------------------------------------ commands

    def execute(self, cmd: str, arguments: Mapping[str, object] | None = None, /, *,
                _timeout: float | None = None, **args: object) -> Any:
        """Run a QMP command; return its 'return' value. Arguments come as
        a mapping (for names with '-', e.g. {"command-line": ...}) and/or as
        keywords. _timeout overrides command_timeout (QAPI names never start
        with '_', so it cannot clash with a command argument)."""
        merged: dict[str, object] = dict(arguments or {})
        merged.update(args)
        timeout = self.command_timeout if _timeout is None else _timeout
        if self._closed:
            raise self._err(QmpError, f"QMP {cmd}: client is closed")
        if self._qmp is None:
            raise self._err(QmpError, f"QMP {cmd}: not connected (call connect())")
        if self._lost:
            raise self._err(QmpConnectionLost, f"QMP {cmd}: connection lost"
                            f"{self._describe_process(settle=0.5)}")
        try:
            return self._run(self._qmp.execute(cmd, merged or None), timeout)
        except ExecuteError as exc:
            cls = QmpCommandNotFound if exc.error_class == "CommandNotFound" else QmpCommandRefused
            raise cls(cmd, merged, exc.error_class, str(exc), self.argv,
                      self.console_log) from None
        except TimeoutError:
            raise self._err(QmpTimeout, f"QMP {cmd}: no reply within {timeout:g} s"
                            f"{self._describe_process()}") from None
        except (ExecInterruptedError, StateError, EOFError, OSError) as exc:
            self._mark_lost()
            raise self._err(QmpConnectionLost, f"QMP {cmd}: connection lost ({exc!r})"
                            f"{self._describe_process(settle=0.5)}") from None
        except (asyncio.CancelledError, concurrent.futures.CancelledError):
            raise self._err(QmpConnectionLost, f"QMP {cmd}: client closed meanwhile") from None
        except QMPError as exc:
            raise self._err(QmpError, f"QMP {cmd}: {exc!r}") from None

    def hmp(self, command_line: str, *, check: bool = True,
            timeout: float | None = None) -> str:
        """Run an HMP command through human-monitor-command; return its text
        (CR-LF turned into LF). HmpError when the text reports a failure
        (HMP_ERROR_PATTERNS) unless check=False. Each call gets a fresh HMP
        monitor: state such as `cpu N` does not carry to the next call."""
        text = self.execute("human-monitor-command", {"command-line": command_line},
                            _timeout=timeout)
        text = str(text).replace("\r\n", "\n")
        if check and any(p.search(text) for p in HMP_ERROR_PATTERNS):
            raise HmpError(command_line, text, self.argv, self.console_log)
        return text

    def commands(self) -> frozenset[str]:
        """Names query-commands lists (cached)."""
        if self._commands is None:
            self._commands = frozenset(c["name"] for c in self.execute("query-commands"))
        return self._commands

    def supports(self, cmd: str) -> bool:
        """Whether cmd works here. Listing in query-commands is necessary;
        for the commands in PROBES (inject-nmi, balloon) it is not enough,
        so they are tried: True unless QEMU refuses. Trying inject-nmi runs
        it (an NMI is delivered where it is supported; on riscv it is
        refused). Results are cached."""
        if cmd not in self._supports:
            ok = cmd in self.commands()
            if ok and cmd in PROBES:
                probe, probe_args = PROBES[cmd]
                try:
                    self.execute(probe, probe_args)
                except (QmpCommandRefused, QmpCommandNotFound):
                    ok = False
            self._supports[cmd] = ok
        return self._supports[cmd]

    # ------------------------------------------------------------ helpers

    def status(self) -> VmStatus:
        r = self.execute("query-status")
        return VmStatus(r["status"], bool(r["running"]))

    def stop(self) -> None:
        """Pause the vCPUs. QEMU emits STOP only if the VM was running: in
        "prelaunch" (-S, before the first cont) stop does nothing at all."""
        self.execute("stop")

    def cont(self) -> None:
        self.execute("cont")

    def system_reset(self) -> None:
        """Reset the machine. With -no-reboot QEMU 7.2 emits SHUTDOWN
        (reason "host-qmp-system-reset") and exits instead; without it,
        RESET (same reason) and the VM keeps its run state."""
        self.execute("system_reset")

    def balloon(self, value: int) -> None:
        """Ask the balloon driver for a guest size of `value` bytes. Needs a
        balloon device (QmpCommandRefused, DeviceNotActive, otherwise) and a
        guest driver to take effect."""
        self.execute("balloon", value=int(value))

    def query_balloon(self) -> int:
        """The guest's current size in bytes as the balloon device reports it."""
        return int(self.execute("query-balloon")["actual"])

    def quit(self, timeout: float = 5.0) -> None:
        """Make QEMU exit; return once it has closed the connection."""
        try:
            self.execute("quit")
        except QmpConnectionLost:
            pass                            # it went before the reply: fine
        self.wait_closed(timeout)

    def vcpus(self) -> list[VCpu]:
        """query-cpus-fast: one entry per vCPU with its host thread id."""
        return [VCpu(int(c["cpu-index"]), int(c["thread-id"]), str(c.get("qom-path", "")),
                     dict(c.get("props") or {}), str(c.get("target", "")))
                for c in self.execute("query-cpus-fast")]

    def registers(self) -> list[CpuRegisters]:
        """Every vCPU's registers from `info registers -a` (plain `info
        registers` shows CPU 0 only). A running VM's values are a snapshot
        per CPU, not taken at one instant; stop() first for a consistent set."""
        text = self.hmp("info registers -a")
        cpus = parse_info_registers(text)
        if not cpus or any("pc" not in c.regs for c in cpus):
            raise self._err(QmpError, "cannot parse `info registers -a` output", text[:2000])
        return cpus
