"""Take a CPU offline or bring it online, timed inside the guest."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

from harness.expect.observations import Observations, StepRecord
from harness.model.prediction import (
    HANG,
    MAY,
    MUST,
    OK,
    REFUSED,
    UNMODELLED,
    HotplugPrediction,
    Prediction,
)
from harness.model.state import Activity, Span
from harness.model.timing import (
    DUR_CONSOLE,
    DUR_OFFLINE,
    DUR_ONLINE_FAST,
    DUR_ONLINE_STALL,
    FAST_ONLINE_MS,
)
from harness.scenario.types import Step
from harness.steps import fields as v
from harness.steps.base import StepContext, StepType

_UPTIME = re.compile(r"hotplug-uptime (\d+\.\d+) (\d+\.\d+)")

if TYPE_CHECKING:
    from harness.model.engine import Model


def execute(live: StepContext, step: Step, rec: StepRecord, obs: Observations, online: set[int]) -> None:
    con = live.con
    a = step.args
    cpu, want = a["cpu"], 1 if a["online"] else 0
    # Timed inside the guest: host-side timing would include console latency.
    res = con.run(f"t0=$(cat /proc/uptime); echo {want} > /sys/devices/system/cpu/cpu{cpu}/online; "
                  f"rc=$?; t1=$(cat /proc/uptime); echo hotplug-uptime ${{t0%% *}} ${{t1%% *}}; "
                  f"(exit $rc)", step.timeout)
    rec.status, rec.output = res.status, res.output
    if m := _UPTIME.search(res.output):
        rec.detail["latency_ms"] = round((float(m.group(2)) - float(m.group(1))) * 1000)
    if res.status == 0:
        (online.add if want else online.discard)(cpu)


def transition(m: Model, p: Prediction, a: dict, step: Step) -> Span:
    f, st = m.features, m.state
    n, want = a["cpu"], a["online"]
    if n is None or want is None:
        p.outcome = {UNMODELLED}
        p.note("hotplug needs cpu and online")
        return DUR_CONSOLE
    n, want = int(n), bool(want)
    if not m.console_cpus(p):
        return DUR_CONSOLE
    if not (f.hotplug and f.smp) or not 0 <= n < st.ncpus:
        p.outcome = {REFUSED}
        p.hotplug = HotplugPrediction(n, want, False, {"at_least": 1},
                                      reason="no /sys/devices/system/cpu/cpuN/online")
        p.status = {"at_least": 1}
        return DUR_CONSOLE
    if want == st.cpus[n].online:
        # drivers/base/core.c device_online/device_offline: nothing to do
        p.hotplug = HotplugPrediction(n, want, False, 0, reason="already in that state")
        return Span(0.01, 0.5)
    return _online(m, p, n, step) if want else _offline(m, p, n, step)


def _online(m: Model, p: Prediction, n: int, step: Step) -> Span:
    """Bring offline CPU n up: blocked by a held hotplug lock, possibly
    stalled by stuck CPUs, and on riscv64 fast only with 3908ba2e0b24."""
    f, st = m.features, m.state
    cpu = st.cpus[n]
    reasons = []
    if st.hotplug_lock:
        m.hang(p, f"{st.hotplug_lock}: cpus_write_lock() in _cpu_up() waits forever")
        p.hotplug = HotplugPrediction(n, True, False, None, reason=st.hotplug_lock)
        m.hung_task(p, step)
        return DUR_ONLINE_STALL
    if st.stuck():
        reasons = [f"CPU {c.n} ({c.cause})" for c in st.stuck()]
        p.outcome = {OK, HANG}
        p.note("stuck CPU(s) " + ", ".join(reasons) + " stall RCU; bringing a CPU up may block")
    cpu.activity = Activity.IDLE
    cpu.cause, cpu.since, cpu.touch = "", None, None
    st.last_hotplug = st.clock
    if m.features.arch.name != "riscv64":
        cls, limit, d = None, None, DUR_ONLINE_STALL
    elif f.sbi_ipi_early:
        cls, limit, d = "fast", FAST_ONLINE_MS, DUR_ONLINE_FAST
    else:
        cls, limit, d = "may-stall", None, DUR_ONLINE_STALL
        p.note("3908ba2e0b24 " + ("reverted" if f.sbi_ipi_early is False else "status unknown")
               + ": the SBI IPI is enabled at CPUHP_AP_ONLINE_DYN, after workqueue_online_cpu(); "
               "an online may take ~1 s (docs/measurements.md §hotplug-stall: 4 of 15)")
    if reasons:
        cls, limit = None, None
    p.hotplug = HotplugPrediction(n, True, True, 0, cls, limit)
    p.status = 0
    return d


def _offline(m: Model, p: Prediction, n: int, step: Step) -> Span:
    """Take online CPU n down: refused for the last one, blocked by a held
    hotplug lock or a stuck CPU; its pinned loads and the UART move away."""
    st = m.state
    cpu = st.cpus[n]
    if st.online() == [n]:
        p.outcome = {REFUSED}
        p.status = {"at_least": 1}
        p.hotplug = HotplugPrediction(n, False, False, {"at_least": 1},
                                      reason="the last online CPU (kernel/cpu.c cpu_down_maps_locked: -EBUSY)")
        return DUR_CONSOLE
    blockers = []
    if st.hotplug_lock:
        blockers.append(st.hotplug_lock)
    for c in st.stuck():
        blockers.append(f"CPU {c.n} never schedules ({c.cause}): RCU grace periods and "
                        "per-CPU kthreads stall")
    if blockers:
        m.hang(p, "offlining blocks: " + "; ".join(blockers))
        p.hotplug = HotplugPrediction(n, False, False, None, reason="; ".join(blockers))
        m.hung_task(p, step)
        return DUR_OFFLINE
    cpu.activity = Activity.OFFLINE
    cpu.cause, cpu.since, cpu.touch = "", None, None
    st.last_hotplug = st.clock
    st.rounding_up.discard(n)
    for load in st.loads:
        if load.cpu == n and load.running(st.clock, m._index) != "no":
            load.cpu = None
            p.expect_console(f"affine:{n}:{load.step}", rf"process \d+ \(\S+\) no longer affine to cpu{n}", MAY)
            p.note(f"the busy loop pinned to CPU {n} loses its affinity and may run on any CPU")
    if st.uart_cpu == n:
        st.uart_cpu = min(st.online())
        p.note(f"the UART interrupt moves to CPU {st.uart_cpu} (first online CPU of its affinity)")
    p.expect_console(f"cpu-off:{n}", m.features.arch.offline_report.format(n=n), MUST)
    p.hotplug = HotplugPrediction(n, False, True, 0)
    p.status = 0
    return DUR_OFFLINE

STEP = StepType(
    kind="hotplug",
    shorthand=None,
    fields={
        "cpu": (int, True, None, v.cpu),
        "online": (bool, True, None, None),
    },
    execute=execute,
    transition=transition,
)
