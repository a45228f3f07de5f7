"""The QMP client's record of asynchronous events: every event stamped and
kept (and written to qmp-events.jsonl) the moment QEMU sends it, and waits
for the next one of a name. A mixin of harness.guest.qmp_link.QmpLink,
whose connection feeds it from the event loop thread."""
from __future__ import annotations

import threading
import time
from typing import IO, Any, Callable, Iterable, Mapping

from qemu.qmp import QMPClient

from harness.guest.qmp_types import QmpConnectionLost, QmpEvent, QmpTimeout


class QmpEventLog:
    """Events in arrival order, guarded by one condition that also signals
    the connection's end. The host class (QmpLink) creates the state below
    and provides _err() and _describe_process()."""

    connected_at: float                 # time.monotonic() when the connection opened
    _cond: threading.Condition
    _events: list[QmpEvent]
    _lost: bool
    _fh: IO[str] | None
    _qmp: QMPClient | None

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
