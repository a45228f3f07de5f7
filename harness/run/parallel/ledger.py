"""A worker's ledger of the QEMU processes and private run directories it
has alive, in the cache (workers/<name>-<pid>.json). PR_SET_PDEATHSIG
already kills QEMU with its worker; what a SIGKILLed worker still leaves is
its run directory (/tmp/rvh-run-*, holding the QMP socket) and, should a
QEMU have escaped, the process. A worker that starts sweeps the ledgers of
dead workers of its own name, and nothing else: a live worker's ledger,
another name's, or a process whose start time no longer matches (its pid
reused) is left alone."""
from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path

from harness.core.children import Ledger
from harness.core.paths import cache_dir

RUN_DIR_PREFIX = "rvh-run-"


def ledger_dir() -> Path:
    d = cache_dir() / "workers"
    d.mkdir(parents=True, exist_ok=True)
    return d


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks (/proc/PID/stat field 22): with the pid, its identity."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[19]) if fields[0] != "Z" else None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class FileLedger(Ledger):
    def __init__(self, name: str) -> None:
        self.path = ledger_dir() / f"{name}-{os.getpid()}.json"
        self._lock = threading.Lock()
        self._alive: dict[int, dict] = {}
        self._write()

    def _write(self) -> None:
        doc = {"owner": os.getpid(), "owner_start": start_time(os.getpid()),
               "children": list(self._alive.values())}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, self.path)

    def started(self, pid: int, run_dir: str) -> None:
        with self._lock:
            self._alive[pid] = {"pid": pid, "start": start_time(pid), "run_dir": run_dir}
            self._write()

    def ended(self, pid: int) -> None:
        with self._lock:
            self._alive.pop(pid, None)
            self._write()

    def close(self) -> None:
        self.path.unlink(missing_ok=True)


def _owner_alive(doc: dict) -> bool:
    pid = doc.get("owner")
    return isinstance(pid, int) and start_time(pid) is not None and start_time(pid) == doc.get("owner_start")


def sweep(name: str) -> list[str]:
    """Kill and remove what dead workers named name left; returns what was done."""
    done: list[str] = []
    tmp_root = Path(tempfile.gettempdir()).resolve()
    for path in sorted(ledger_dir().glob(f"{name}-*.json")):
        if not path.stem[len(name) + 1:].isdigit():
            continue          # another name that starts with ours
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
            continue
        if _owner_alive(doc):
            continue
        for child in doc.get("children", []):
            pid = child.get("pid")
            if isinstance(pid, int) and start_time(pid) == child.get("start") and "qemu-system" in _cmdline(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                    done.append(f"killed QEMU {pid}")
                except ProcessLookupError:
                    pass
            run_dir = Path(str(child.get("run_dir", ""))).resolve()
            # Only a private run directory directly under the temp dir.
            if run_dir.parent == tmp_root and run_dir.name.startswith(RUN_DIR_PREFIX) and run_dir.is_dir():
                shutil.rmtree(run_dir, ignore_errors=True)
                done.append(f"removed {run_dir}")
        path.unlink(missing_ok=True)
    return done
