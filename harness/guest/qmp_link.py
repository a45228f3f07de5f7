"""The QMP client's connection: a private asyncio event loop, connecting
and closing within bounded times, and execute() for one command. The
command helpers (harness.guest.qmp.QmpClient) build on it; the events it
receives are kept by harness.guest.qmp_eventlog.QmpEventLog.

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
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from pathlib import Path
from typing import IO, Any, Callable, Coroutine, Mapping, Self, Sequence, TypeVar

from qemu.qmp import EventListener, QMPClient
from qemu.qmp.error import QMPError
from qemu.qmp.protocol import ConnectError, Runstate, StateError
from qemu.qmp.qmp_client import ExecInterruptedError, ExecuteError

from harness.guest.qmp_eventlog import QmpEventLog
from harness.guest.qmp_types import (
    QmpCommandNotFound,
    QmpCommandRefused,
    QmpConnectionLost,
    QmpError,
    QmpEvent,
    QmpTimeout,
)

T = TypeVar("T")

EVENTS_FILE = "qmp-events.jsonl"

# qemu.qmp logs at ERROR when QEMU goes away ("Task.Reader: EOFError"); the
# harness reports that as QmpConnectionLost. A NullHandler keeps Python's
# last-resort handler from printing it on stderr; the records still reach
# any handler the application configured.
_QMP_LOG_NAME = "rvharness"
logging.getLogger(f"qemu.qmp.protocol.{_QMP_LOG_NAME}").addHandler(logging.NullHandler())


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


class QmpLink(QmpEventLog):
    """The connection under QmpClient: the loop thread, connect(), close()
    and execute(), each bounded in time (see QmpClient); the events it
    receives go to the QmpEventLog it extends."""

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
        self._commands: frozenset[str] | None = None    # QmpClient.commands()' cache
        self._supports: dict[str, bool] = {}             # QmpClient.supports()' cache

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

    def connect(self) -> Self:
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

    def __enter__(self) -> Self:
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
