"""harness.guest.qmp against a real qemu-system-riscv64 -M virt (no kernel, -S):
nothing here is faked. Every QEMU started is killed by a finaliser, and the
last check makes sure none is left."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from harness.core import hostcmd
from harness.core.errors import HarnessError, MachineError
from harness.core.paths import private_dir
from harness.guest.info_registers import parse_info_registers
from harness.guest.qmp import QmpClient
from harness.guest.qmp_link import EVENTS_FILE
from harness.guest.qmp_types import (
    HmpError,
    QmpCommandNotFound,
    QmpCommandRefused,
    QmpConnectionLost,
    QmpTimeout,
)

QEMU = "qemu-system-riscv64"
DIR_PREFIX = "rvh-qmptest-"
MiB = 1024 * 1024

_STARTED: list[subprocess.Popen] = []     # every QEMU this module started


class Qemu:
    def __init__(self, proc: subprocess.Popen, argv: list[str], sock: Path, artifacts: Path) -> None:
        self.proc = proc
        self.argv = argv
        self.sock = sock
        self.artifacts = artifacts
        self.clients: list[QmpClient] = []

    @property
    def pid(self) -> int:
        return self.proc.pid

    def client(self, **kwargs: object) -> QmpClient:
        pid = self.proc.pid if self.proc is not None else None
        q = QmpClient(self.sock, self.artifacts, pid=pid, argv=self.argv, **kwargs)
        self.clients.append(q)
        return q

    def connect(self, **kwargs: object) -> QmpClient:
        return self.client(**kwargs).connect()


def _argv(sock: Path, smp: int, extra: tuple[str, ...]) -> list[str]:
    return [QEMU, "-M", "virt", "-S", "-smp", str(smp), "-display", "none", "-nodefaults",
            "-qmp", f"unix:{sock},server=on,wait=off", *extra]


@pytest.fixture
def start_qemu(tmp_path: Path) -> Iterator[Callable[..., Qemu]]:
    hostcmd.require_tool(QEMU)
    started: list[Qemu] = []
    dirs: list[Path] = []
    logs: list = []

    def start(*extra: str, smp: int = 2, delay: float = 0.0) -> Qemu:
        run_dir = private_dir(prefix=DIR_PREFIX)        # 0700, short path under /tmp
        dirs.append(run_dir)
        sock = run_dir / "qmp.sock"
        argv = _argv(sock, smp, extra)
        n = len(started)
        artifacts = tmp_path / f"artifacts{n}"
        log = open(tmp_path / f"qemu{n}.log", "wb")
        logs.append(log)
        holder: dict[str, subprocess.Popen] = {}

        def spawn() -> None:
            holder["p"] = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                           stderr=subprocess.STDOUT)
            _STARTED.append(holder["p"])

        if delay:
            # Started later on purpose: the client must wait for the socket.
            # pid is unknown to the client until then, so it is not passed.
            timer = threading.Timer(delay, spawn)
            timer.start()
            q = Qemu(None, argv, sock, artifacts)  # type: ignore[arg-type]
            q.timer, q.holder = timer, holder      # type: ignore[attr-defined]
        else:
            spawn()
            q = Qemu(holder["p"], argv, sock, artifacts)
        started.append(q)
        return q

    yield start

    for q in started:
        timer = getattr(q, "timer", None)
        if timer is not None:
            timer.join()
            q.proc = q.holder["p"]          # type: ignore[attr-defined]
        for c in q.clients:
            c.close()
        if q.proc.poll() is None:
            q.proc.kill()
        q.proc.wait(5)
    for log in logs:
        log.close()
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


def _our_qemus() -> list[str]:
    """QEMU processes (anyone's) whose command line names one of our run dirs."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if QEMU in cmdline and DIR_PREFIX in cmdline:
            found.append(f"{pid}: {cmdline}")
    return found


@pytest.fixture(scope="module", autouse=True)
def no_qemu_left_behind() -> Iterator[None]:
    yield
    alive = [p.pid for p in _STARTED if p.poll() is None]
    assert not alive, f"QEMU processes still running after the QMP tests: {alive}"
    assert not _our_qemus()


# --------------------------------------------------------------- connecting

def test_connect_and_query_status_paused(start_qemu: Callable[..., Qemu]) -> None:
    qemu = start_qemu()
    with qemu.client() as q:                     # connects at once: socket not there yet
        st = q.status()
        assert st.status == "prelaunch" and st.running is False
        assert q.greeting is not None
        assert q.greeting["QMP"]["version"]["qemu"]["major"] >= 7
        assert q.connected
    assert not q.connected
    assert (qemu.artifacts / EVENTS_FILE).exists()
    q.close()                                    # idempotent


def test_connect_waits_for_the_socket(start_qemu: Callable[..., Qemu]) -> None:
    qemu = start_qemu(delay=0.4)
    t0 = time.monotonic()
    q = qemu.connect(connect_timeout=10)
    assert time.monotonic() - t0 >= 0.35
    assert q.status().status == "prelaunch"


def test_connect_timeout_is_typed() -> None:
    run_dir = private_dir(prefix=DIR_PREFIX)
    try:
        q = QmpClient(run_dir / "qmp.sock", connect_timeout=0.3)
        t0 = time.monotonic()
        with pytest.raises(QmpTimeout, match="socket never appeared"):
            q.connect()
        assert 0.3 <= time.monotonic() - t0 < 2.0
        q.close()
    finally:
        shutil.rmtree(run_dir)


def test_qemu_dying_at_startup_is_noticed_before_the_deadline(
        start_qemu: Callable[..., Qemu]) -> None:
    qemu = start_qemu("-no-such-option")          # QEMU exits before creating the socket
    t0 = time.monotonic()
    with pytest.raises(QmpConnectionLost, match="exited before"):
        qemu.connect(connect_timeout=20)
    assert time.monotonic() - t0 < 5.0


# --------------------------------------------------------------- events

def test_stop_cont_events_are_timestamped_and_logged(start_qemu: Callable[..., Qemu]) -> None:
    qemu = start_qemu()
    q = qemu.connect()
    before = time.time()

    # In prelaunch (-S) "stop" is a no-op: the state stays, no STOP event.
    m0 = q.mark()
    q.stop()
    assert q.status().status == "prelaunch"
    with pytest.raises(QmpTimeout):
        q.wait_event("STOP", 0.3, since=m0)

    m1 = q.mark()
    q.cont()
    resume = q.wait_event("RESUME", 2.0, since=m1)
    assert q.status().running is True
    m2 = q.mark()
    q.stop()
    stop = q.wait_event("STOP", 2.0, since=m2)
    assert q.status().status == "paused"

    assert 0 <= resume.t <= stop.t < 10
    assert before - 1 <= resume.wall <= stop.wall <= time.time() + 1
    assert resume.qemu_ts is not None and abs(resume.qemu_ts - resume.wall) < 5
    assert stop.seq == resume.seq + 1

    lines = [json.loads(x) for x in (qemu.artifacts / EVENTS_FILE).read_text().splitlines()]
    by_seq = {d["seq"]: d for d in lines}
    for ev in (resume, stop):
        rec = by_seq[ev.seq]
        assert rec["event"] == ev.name
        assert rec["t"] == pytest.approx(ev.t, abs=1e-5)
        assert rec["wall"] == pytest.approx(ev.wall, abs=1e-5)
        assert rec["qemu_ts"] == ev.qemu_ts
        assert rec["data"] == {}
    assert [e.name for e in q.events] == [d["event"] for d in lines]


def test_wait_event_returns_earlier_events_after_the_mark(start_qemu: Callable[..., Qemu]) -> None:
    q = start_qemu().connect()
    q.cont()
    q.stop()
    time.sleep(0.1)
    # Already received: found without waiting, from 0 or from a mark before it.
    t0 = time.monotonic()
    assert q.wait_event("RESUME", 5.0).name == "RESUME"
    assert q.wait_event(["STOP", "RESUME"], 5.0, since=1).name == "STOP"
    assert q.wait_event("STOP", 5.0, predicate=lambda e: e.seq == 1).seq == 1
    assert time.monotonic() - t0 < 0.5
    # But not from a mark taken after it.
    with pytest.raises(QmpTimeout):
        q.wait_event("RESUME", 0.2, since=q.mark())


def test_wait_event_timeout_raises_typed_error(start_qemu: Callable[..., Qemu]) -> None:
    qemu = start_qemu()
    q = qemu.connect()
    t0 = time.monotonic()
    with pytest.raises(QmpTimeout) as info:
        q.wait_event("GUEST_PANICKED", 0.4)
    elapsed = time.monotonic() - t0
    assert 0.4 <= elapsed < 1.5
    assert isinstance(info.value, MachineError) and isinstance(info.value, HarnessError)
    assert info.value.argv == qemu.argv
    assert "GUEST_PANICKED" in str(info.value)


# --------------------------------------------------------------- errors

def test_unknown_command_raises_command_not_found(start_qemu: Callable[..., Qemu]) -> None:
    q = start_qemu().connect()
    with pytest.raises(QmpCommandNotFound) as info:
        q.execute("no-such-command")
    assert info.value.error_class == "CommandNotFound"
    assert info.value.cmd == "no-such-command"
    assert not q.supports("no-such-command")
    assert q.status().status == "prelaunch"      # the session survives an error


def test_inject_nmi_is_listed_but_refused(start_qemu: Callable[..., Qemu]) -> None:
    q = start_qemu().connect()
    assert "inject-nmi" in q.commands()
    with pytest.raises(QmpCommandRefused) as info:
        q.execute("inject-nmi")
    assert not isinstance(info.value, QmpCommandNotFound)
    assert info.value.error_class == "GenericError"
    assert "not currently supported" in info.value.desc
    assert q.supports("inject-nmi") is False
    assert q.supports("query-status") is True
    assert q.supports("stop") is True


def test_hmp_errors_are_typed(start_qemu: Callable[..., Qemu]) -> None:
    q = start_qemu().connect()
    assert q.hmp("info status") == "VM status: paused (prelaunch)\n"
    for line, text in [("info nonexistent", "unknown command"),   # not "Error:" in 7.2
                       ("cpu 99", "invalid CPU index"),             # not "Error:" in 7.2
                       ("device_del nope", "Error: Device 'nope' not found"),
                       ("nmi", "Error: this feature or command is not currently supported"),
                       ("x /1x not-a-number", 'Try "help x"')]:
        with pytest.raises(HmpError) as info:
            q.hmp(line)
        assert info.value.command_line == line
        assert text in info.value.text
    # check=False hands back the text instead.
    assert "invalid CPU index" in q.hmp("cpu 99", check=False)


def test_hmp_cpu_selection_does_not_persist(start_qemu: Callable[..., Qemu]) -> None:
    # Each human-monitor-command runs in a fresh HMP monitor.
    q = start_qemu().connect()
    assert q.hmp("cpu 1") == ""
    regs = parse_info_registers(q.hmp("info registers"))
    assert [r.index for r in regs] == [0]


# --------------------------------------------------------------- helpers

def test_registers_one_pc_per_vcpu(start_qemu: Callable[..., Qemu]) -> None:
    q = start_qemu(smp=2).connect()
    regs = q.registers()
    assert [r.index for r in regs] == [0, 1]
    for r in regs:
        assert r.pc == 0x1000                    # virt's reset vector, before any instruction
        assert r.hartid == r.index
        assert r["sp"] == r["x2"] == 0
    q3 = start_qemu(smp=3).connect()
    assert [r.index for r in q3.registers()] == [0, 1, 2]


def test_parse_info_registers_high_addresses() -> None:
    text = ("\r\nCPU#0\r\n V      =   0\r\n pc       ffffffff80a01234\r\n"
            " mhartid  0000000000000000\r\n"
            " x0/zero  0000000000000000 x1/ra    ffffffff80001000 x2/sp    ff20000000013f00"
            " x3/gp    ffffffff81a3b2c8\r\n"
            "\r\nCPU#1\r\n V      =   0\r\n pc       ffffffff8000abcd\r\n"
            " mhartid  0000000000000001\r\n")
    a, b = parse_info_registers(text)
    assert (a.index, a.pc, a["ra"], a["x1"], a["sp"], a["V"]) == (
        0, 0xffffffff80a01234, 0xffffffff80001000, 0xffffffff80001000, 0xff20000000013f00, 0)
    assert (b.index, b.pc, b.hartid) == (1, 0xffffffff8000abcd, 1)


def test_vcpu_thread_ids_are_qemu_threads(start_qemu: Callable[..., Qemu]) -> None:
    qemu = start_qemu(smp=2)
    q = qemu.connect()
    cpus = q.vcpus()
    assert [c.index for c in cpus] == [0, 1]
    tids = {int(t) for t in os.listdir(f"/proc/{qemu.pid}/task")}
    assert len({c.thread_id for c in cpus}) == 2
    for c in cpus:
        assert c.thread_id in tids and c.thread_id != qemu.pid
        assert c.target == "riscv64"


def test_sigkill_makes_next_command_raise_connection_lost(start_qemu: Callable[..., Qemu]) -> None:
    qemu = start_qemu()
    q = qemu.connect()
    q.status()
    os.kill(qemu.pid, signal.SIGKILL)
    t0 = time.monotonic()
    with pytest.raises(QmpConnectionLost, match="has exited"):
        q.status()
    assert time.monotonic() - t0 < 2.0
    assert not q.connected
    t1 = time.monotonic()
    with pytest.raises(QmpConnectionLost):       # no event can come any more
        q.wait_event("SHUTDOWN", 30)
    assert time.monotonic() - t1 < 1.0
    t2 = time.monotonic()
    q.close()
    q.close()
    assert time.monotonic() - t2 < 5.0


def test_command_timeout_and_close_with_qemu_frozen(start_qemu: Callable[..., Qemu]) -> None:
    qemu = start_qemu()
    q = qemu.connect()
    os.kill(qemu.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        with pytest.raises(QmpTimeout, match="no reply within 0.5 s"):
            q.execute("query-status", _timeout=0.5)
        assert 0.5 <= time.monotonic() - t0 < 3.0
        t1 = time.monotonic()
        q.close()
        assert time.monotonic() - t1 < 6.0
    finally:
        os.kill(qemu.pid, signal.SIGCONT)


def test_system_reset_with_no_reboot_emits_shutdown_and_exits(
        start_qemu: Callable[..., Qemu]) -> None:
    qemu = start_qemu("-no-reboot")
    q = qemu.connect()
    q.cont()
    m = q.mark()
    q.system_reset()
    ev = q.wait_event(["SHUTDOWN", "RESET"], 5.0, since=m)
    assert ev.name == "SHUTDOWN"
    assert ev.data == {"guest": False, "reason": "host-qmp-system-reset"}
    q.wait_closed(5.0)
    assert qemu.proc.wait(5) == 0
    assert [e.name for e in q.events[m:]] == ["SHUTDOWN"]   # no RESET at all


def test_system_reset_without_no_reboot_emits_reset(start_qemu: Callable[..., Qemu]) -> None:
    qemu = start_qemu()
    q = qemu.connect()
    q.cont()
    m = q.mark()
    q.system_reset()
    ev = q.wait_event(["SHUTDOWN", "RESET"], 5.0, since=m)
    assert ev.name == "RESET"
    assert ev.data == {"guest": False, "reason": "host-qmp-system-reset"}
    assert q.status().running is True
    assert qemu.proc.poll() is None


def test_quit(start_qemu: Callable[..., Qemu]) -> None:
    qemu = start_qemu()
    q = qemu.connect()
    q.quit()
    ev = q.wait_event("SHUTDOWN", 1.0)
    assert ev.data == {"guest": False, "reason": "host-qmp-quit"}
    assert qemu.proc.wait(5) == 0
    with pytest.raises(QmpConnectionLost):
        q.status()


def test_balloon_with_device(start_qemu: Callable[..., Qemu]) -> None:
    q = start_qemu("-m", "256M", "-device", "virtio-balloon-device").connect()
    assert q.supports("balloon")
    assert q.query_balloon() == 256 * MiB
    q.balloon(128 * MiB)                         # accepted ...
    assert q.query_balloon() == 256 * MiB        # ... but no guest driver acts on it
    with pytest.raises(QmpCommandRefused, match="expects a size"):
        q.balloon(0)


def test_balloon_without_device_is_refused(start_qemu: Callable[..., Qemu]) -> None:
    q = start_qemu().connect()
    assert "balloon" in q.commands()
    assert not q.supports("balloon")
    for call in (lambda: q.balloon(128 * MiB), q.query_balloon):
        with pytest.raises(QmpCommandRefused) as info:
            call()
        assert info.value.error_class == "DeviceNotActive"


def test_zz_no_qemu_left() -> None:
    # Runs last in this module: every QEMU started above has been reaped.
    assert _STARTED, "the tests above started no QEMU at all"
    assert [p.pid for p in _STARTED if p.returncode is None and p.poll() is None] == []
    assert _our_qemus() == []
