"""Faults injected from outside the guest through QMP and the host
scheduler: pause, reset, balloon, starve, nmi, and a pvpanic-reported panic.
Each returns what it measured for the step's record; a fault that cannot be
carried out raises a typed error, never hangs."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from harness.core.children import die_with_harness
from harness.core.errors import ConsoleTimeout, MachineError
from harness.guest.console import KDB_GO_AGAIN, KDB_PROMPT, Console, idle
from harness.guest.qmp import QmpClient
from harness.guest.qmp_types import QmpCommandNotFound, QmpCommandRefused, QmpTimeout
from harness.guest.vcpu_probe import cpu_harts, cpu_vcpus_arm64

_UPTIME = re.compile(r"^(\d+\.\d+) ", re.M)
MIB = 1 << 20


class ScenarioAborted(MachineError):
    """The machine went away as a consequence of a step (a reset with
    -no-reboot): the remaining steps cannot run. Not a kernel failure."""


class FaultFailed(MachineError):
    """The fault could not be carried out or did not take effect."""


@dataclass
class FaultContext:
    console: Console
    qmp: QmpClient
    qemu_pid: int
    reboot: bool                 # QEMU started without -no-reboot: a reset reboots the guest
    boot_timeout: float
    memory_bytes: int
    known_harts: dict[int, int] | None = None    # see harts

    @property
    def harts(self) -> dict[int, int]:
        """Linux CPU -> hart id = QEMU vCPU index (vcpus.cpu_harts), read
        from /proc/cpuinfo on first use. Only probes and starve need it; the
        runner reads it right after boot for scenarios that have them, since
        /proc/cpuinfo lists only online CPUs and kdb holds the console."""
        if self.known_harts is None:
            self.known_harts = read_harts(self.console, 20)
        return self.known_harts


def guest_uptime(con: Console, timeout: float) -> float:
    res = con.run(["cat", "/proc/uptime"], timeout)
    m = _UPTIME.search(res.output)
    if res.status != 0 or m is None:
        raise FaultFailed(f"cannot read /proc/uptime: {res.output.strip()[:200]!r}", con.argv,
                          con.log_path)
    return float(m.group(1))


def read_harts(con: Console, timeout: float) -> dict[int, int]:
    res = con.run(["cat", "/proc/cpuinfo"], timeout)
    harts = cpu_harts(res.output)
    if not harts:
        # arm64: no hardware id in /proc/cpuinfo; the boot log has the MPIDRs.
        harts = cpu_vcpus_arm64(con.text(0))
    if not harts:
        raise FaultFailed(f"no 'hart' lines in /proc/cpuinfo and no arm64 MPIDR lines in the "
                          f"boot log: {res.output.strip()[:200]!r}", con.argv, con.log_path)
    return harts


def pause(ctx: FaultContext, seconds: float, timeout: float) -> dict[str, Any]:
    """stop, hold, cont; then prove the console is in sync with a command
    and compare the guest's clock with the host's."""
    q, con = ctx.qmp, ctx.console
    before = guest_uptime(con, timeout)
    h0 = time.monotonic()
    mark = q.mark()
    q.stop()
    stop = q.wait_event("STOP", timeout, since=mark)
    time.sleep(seconds)
    q.cont()
    resume = q.wait_event("RESUME", timeout, since=mark)
    after = guest_uptime(con, timeout)
    host = time.monotonic() - h0
    return {"stopped_seconds": round(resume.t - stop.t, 3), "host_seconds": round(host, 3),
            "guest_seconds": round(after - before, 3),
            # The virtual clock stands still while stopped: the guest should
            # see about host - stopped seconds pass.
            "guest_lag_seconds": round(host - (after - before), 3)}


def reset(ctx: FaultContext, after: float, during: str | None, timeout: float) -> dict[str, Any]:
    """system_reset, optionally while a console command runs. With reboot
    the guest boots again and the console re-syncs on the ready line; with
    -no-reboot QEMU exits and the scenario is aborted."""
    q, con = ctx.qmp, ctx.console
    detail: dict[str, Any] = {}
    if during:
        pending = con.begin(during)
        con.started(pending, timeout)
        detail["interrupted_command"] = during
    if after:
        idle(con, after)
    mark = q.mark()
    t0 = time.monotonic()
    q.system_reset()
    if not ctx.reboot:
        ev = q.wait_event("SHUTDOWN", timeout, since=mark)
        raise ScenarioAborted(f"aborted: the guest was reset (SHUTDOWN {ev.data}) and QEMU exits on "
                              f"reset (-no-reboot); set machine.reboot: true to continue after it",
                              con.argv, con.log_path)
    ev = q.wait_event("RESET", timeout, since=mark)
    detail["event"] = {"name": ev.name, "data": ev.data}
    con.wait_ready(ctx.boot_timeout)
    # Another boot lottery: CPU numbers may map to other harts now.
    ctx.known_harts = read_harts(con, timeout)
    detail["harts"] = {str(c): h for c, h in ctx.harts.items()}
    detail["reboot_seconds"] = round(time.monotonic() - t0, 3)
    detail["cpus"] = con.cpus
    return detail


def _balloon_until(q: QmpClient, want: int, shrinking: bool, timeout: float) -> tuple[int, float]:
    t0 = time.monotonic()
    q.balloon(want)
    while True:
        actual = q.query_balloon()
        if (actual <= want + MIB) if shrinking else (actual >= want - MIB):
            return actual, time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise FaultFailed(f"balloon: guest size still {actual // MIB} MiB {timeout:g} s after "
                              f"asking for {want // MIB} MiB (no virtio-balloon driver in the guest?)")
        time.sleep(0.05)


def _mem_available(con: Console, timeout: float) -> int | None:
    res = con.run(["cat", "/proc/meminfo"], timeout)
    m = re.search(r"^MemAvailable:\s+(\d+) kB", res.output, re.M)
    return int(m.group(1)) * 1024 if m else None


def balloon(ctx: FaultContext, target: int, hold: float, timeout: float) -> dict[str, Any]:
    """Inflate the balloon until the guest is down to `target` bytes, hold,
    and let it out to the full size again."""
    q, con = ctx.qmp, ctx.console
    full = q.query_balloon()
    avail0 = _mem_available(con, timeout)
    squeezed, t_in = _balloon_until(q, target, True, timeout)
    avail1 = _mem_available(con, timeout)
    if hold:
        idle(con, hold)
    restored, t_out = _balloon_until(q, full, False, timeout)
    avail2 = _mem_available(con, timeout)
    return {"full_mib": full // MIB, "target_mib": target // MIB, "squeezed_mib": squeezed // MIB,
            "restored_mib": restored // MIB, "inflate_seconds": round(t_in, 3),
            "deflate_seconds": round(t_out, 3),
            "mem_available_mib": [None if a is None else a // MIB for a in (avail0, avail1, avail2)]}


def _cpu_ticks(pid: int, tid: int) -> int:
    fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])      # utime + stime (fields 14, 15)


CPU_CGROUP_V1 = Path("/sys/fs/cgroup/cpu")
QUOTA_PERIOD_US = 100_000


def _cpu_cgroup_of(pid: int, tid: int) -> Path | None:
    for line in Path(f"/proc/{pid}/task/{tid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "cpu" in controllers.split(","):
            return CPU_CGROUP_V1 / path.lstrip("/")
    return None


@contextmanager
def _quota(pid: int, tids: list[int], share: float) -> Iterator[str]:
    """Move the threads into a private cgroup-v1 cpu group with a CFS quota
    of `share` of one host CPU; put them back afterwards."""
    homes = {tid: _cpu_cgroup_of(pid, tid) for tid in tids}
    group = CPU_CGROUP_V1 / f"rvharness-starve-{pid}"
    group.mkdir(mode=0o700)
    try:
        (group / "cpu.cfs_period_us").write_text(str(QUOTA_PERIOD_US))
        (group / "cpu.cfs_quota_us").write_text(str(max(1000, int(QUOTA_PERIOD_US * share))))
        for tid in tids:
            (group / "tasks").write_text(str(tid))
        yield f"cgroup-v1 cpu quota {share:.1%} of a host CPU ({group})"
    finally:
        for tid, home in homes.items():
            try:
                ((home or CPU_CGROUP_V1) / "tasks").write_text(str(tid))
            except OSError:
                pass                    # the thread is gone (QEMU exited)
        try:
            group.rmdir()
        except OSError:
            pass


@contextmanager
def _idle_priority(pid: int, tids: list[int], others: list[int]) -> Iterator[str]:
    """Without a writable cpu cgroup: SCHED_IDLE on one host core that a
    busy host process keeps occupied, the other vCPUs kept off it. Weaker:
    QEMU runs in its own session and so its own autogroup, which gets its
    fair half of the core whatever the thread policy (measured: 24%)."""
    allowed = os.sched_getaffinity(pid)
    host_cpu = max(allowed)
    rest = allowed - {host_cpu}
    saved = {tid: (os.sched_getaffinity(tid), os.sched_getscheduler(tid), os.sched_getparam(tid))
             for tid in tids + others}
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           preexec_fn=die_with_harness())
    try:
        os.sched_setaffinity(hog.pid, {host_cpu})
        for tid in others if rest else []:
            os.sched_setaffinity(tid, rest)
        for tid in tids:
            os.sched_setaffinity(tid, {host_cpu})
            os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
        yield f"SCHED_IDLE on host CPU {host_cpu} next to a busy host process"
    finally:
        for tid, (aff, policy, param) in saved.items():
            try:
                os.sched_setscheduler(tid, policy, param)
                os.sched_setaffinity(tid, aff)
            except ProcessLookupError:
                pass
        hog.kill()
        hog.wait()


@contextmanager
def starved(ctx: FaultContext, cpus: list[int], share: float) -> Iterator[dict[str, Any]]:
    """While inside, the chosen vCPUs' host threads get about `share` of
    one host CPU: a cgroup CPU quota where the host allows it, else idle
    scheduling priority. What each vCPU thread really got is measured."""
    vcpus = {v.index: v.thread_id for v in ctx.qmp.vcpus()}
    if len(set(vcpus.values())) < len(vcpus):
        raise FaultFailed("starve: QEMU runs all vCPUs on one host thread (no MTTCG); "
                          "one vCPU cannot be slowed alone")
    missing = [c for c in cpus if ctx.harts.get(c) not in vcpus]
    if missing:
        raise FaultFailed(f"starve: no vCPU for CPU {missing[0]} (harts {ctx.harts}, "
                          f"query-cpus-fast lists {sorted(vcpus)})")
    tids = [vcpus[ctx.harts[c]] for c in cpus]
    others = [t for t in vcpus.values() if t not in tids]
    cpu_of = {h: c for c, h in ctx.harts.items()}
    info: dict[str, Any] = {"threads": {str(c): vcpus[ctx.harts[c]] for c in cpus}}
    writable = os.access(CPU_CGROUP_V1 / "cpu.cfs_quota_us", os.F_OK) and os.access(CPU_CGROUP_V1, os.W_OK)
    method = _quota(ctx.qemu_pid, tids, share) if writable else _idle_priority(ctx.qemu_pid, tids, others)
    ticks0 = {h: _cpu_ticks(ctx.qemu_pid, t) for h, t in vcpus.items()}
    t0 = time.monotonic()
    with method as how:
        info["method"] = how
        yield info
    wall = time.monotonic() - t0
    hz = os.sysconf("SC_CLK_TCK")
    try:
        # Host CPU time each vCPU thread got per second, by Linux CPU number.
        info["vcpu_cpu_share"] = {str(cpu_of.get(h, f"hart{h}")):
                                  round((_cpu_ticks(ctx.qemu_pid, t) - ticks0[h]) / hz / wall, 3)
                                  for h, t in sorted(vcpus.items())}
    except (FileNotFoundError, ProcessLookupError):
        pass
    info["seconds"] = round(wall, 3)


def starve(ctx: FaultContext, cpus: list[int], seconds: float, during: str | None,
           timeout: float, share: float = 0.01) -> dict[str, Any]:
    """Starve the vCPUs for exactly `seconds`; `during` is started on the
    console as the starvation begins and collected after it ends, and timed
    (e.g. a backtrace IPI that needs a starved CPU)."""
    con = ctx.console
    pending = None
    with starved(ctx, cpus, share) as info:
        if during:
            pending = con.begin(during)
        idle(con, seconds)
    if pending is not None:
        res = con.finish(pending, timeout)
        info["during"] = {"command": during, "status": res.status, "seconds": round(res.seconds, 3),
                          "finished_while_starved": res.seconds <= seconds,
                          "output": res.output[-2000:]}
    return info


def nmi(ctx: FaultContext) -> dict[str, Any]:
    """inject-nmi; QEMU's refusal becomes a skip reason, not a pass."""
    try:
        ctx.qmp.execute("inject-nmi")
    except (QmpCommandRefused, QmpCommandNotFound) as exc:
        return {"skipped": f"QEMU refused inject-nmi: {exc.error_class}: {exc.desc}"}
    return {"injected": True}


def panic(ctx: FaultContext, cpu: int | None, timeout: float) -> dict[str, Any]:
    """LKDTM PANIC with pvpanic-pci present: wait for GUEST_PANICKED. With
    kgdboc attached and panic_timeout 0, panic() enters kdb first
    (kgdb_panic); leave it with go (twice if asked) so the notifiers run."""
    q, con = ctx.qmp, ctx.console
    mark = q.mark()
    pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
    con.allowed_crashes |= {"panic", "oops"}
    con.begin([*pin, "sh", "-c", "echo PANIC > /sys/kernel/debug/provoke-crash/DIRECT"])
    deadline = time.monotonic() + timeout
    gos = 0
    while True:
        try:
            ev = q.wait_event("GUEST_PANICKED", 0.2, since=mark)
            break
        except QmpTimeout:
            pass
        if time.monotonic() > deadline:
            raise FaultFailed(f"no GUEST_PANICKED event within {timeout:g} s after LKDTM PANIC "
                              "(pvpanic-pci missing, or CONFIG_PVPANIC_PCI off?)", con.argv, con.log_path)
        try:
            m = con.expect([KDB_PROMPT, KDB_GO_AGAIN], 0.2, "kdb after the panic")
        except ConsoleTimeout:
            continue
        if m.re.pattern == KDB_PROMPT:
            con.send("go\r")
            gos += 1
    con.settle(quiet=0.5, limit=5.0)
    return {"event": {"name": ev.name, "data": ev.data, "t": round(ev.t, 3)}, "kdb_go": gos}
