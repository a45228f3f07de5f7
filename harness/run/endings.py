"""How a run that did not reach its end is judged: a crash (the one a step
asked for, or the kernel's), a hang, and QEMU or the guest stopping under
the harness. What the guest did is a FAIL of a named check ("kernel did not
crash", "guest responded", "kernel boots to a shell"); only what the harness
can show is the host's is an ERROR (infrastructure)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.core.errors import BootTimeout, ConsoleTimeout, GuestCrashed, QemuExited
from harness.expect.checks import ERROR, FAIL, CheckResult
from harness.expect.observations import Observations, StepRecord
from harness.expect.result import ScenarioResult
from harness.guest.qmp import QmpConnectionLost, QmpError
from harness.scenario.types import Step
from harness.steps.base import StepContext
from harness.steps.registry import STEP_TYPES


@dataclass
class Progress:
    """How far an attempt got, for the verdict of whatever ended it: the
    step running (None before the first and after the last), the CPUs
    online, the kernel config as far as known."""
    online: set[int]
    config: dict[str, str] | None
    current: Step | None = None
    step_start: int = 0                 # console position where current began
    skipped: list[str] = field(default_factory=list)
    hang_vcpus: str = ""                # the vCPU probe's summary after a console timeout
    live: StepContext | None = None


def crashed(exc: GuestCrashed, result: ScenarioResult, obs: Observations, run: Progress) -> None:
    current = run.current
    if current is not None:
        obs.ended = {"step": current.name, "how": "crashed", "detail": exc.title}
    if current is not None and STEP_TYPES[current.kind].crashes(current.args):
        # The crash the step asked for: record it, stop, and let the
        # expectations judge the report.
        obs.steps[current.name] = StepRecord(current.name, current.kind, run.step_start, len(obs.console),
                                             0.0, sorted(run.online), detail={"crashed": exc.title})
    else:
        where = f"in step '{current.name}'" if current else "while booting"
        result.verdict, result.reason = FAIL, f"kernel crashed {where}: {exc.title}"
        result.checks.append(CheckResult("kernel did not crash", FAIL, "no panic or oops",
                                         f"{exc.title}\n{exc.text[-4000:]}",
                                         current.name if current else None))


def hung(exc: ConsoleTimeout, result: ScenarioResult, obs: Observations, run: Progress) -> None:
    current = run.current
    if current is not None:
        obs.ended = {"step": current.name, "how": "hung", "detail": str(exc)}
    result.verdict = FAIL
    result.reason = f"guest hung in step '{current.name if current else '?'}': {exc}"
    if run.hang_vcpus:
        result.reason += f"; vCPUs: {run.hang_vcpus}"
    result.checks.append(CheckResult("guest responded", FAIL, "every step completes",
                                     f"{exc}\nvCPUs (QMP, after the timeout): {run.hang_vcpus}\n"
                                     f"{exc.excerpt[-2000:]}",
                                     current.name if current else None))


# The kernel's banner: once it is on the console, the guest ran.
LINUX_BANNER = "Linux version "
# kernel/reboot.c (pr_fmt "reboot: "): the kernel's own words as it resets,
# halts or powers the machine off, which under -no-reboot ends QEMU.
KERNEL_STOPS = ("reboot: Restarting system", "reboot: Power down", "reboot: System halted")


def _guest_caused(exc: BootTimeout | QemuExited | QmpError, obs: Observations, out: Path) -> bool:
    """Whether the guest, not the host, ended the run. Infrastructure is
    what the harness can show is the host's: QEMU that could not start (no
    kernel banner on the console), QEMU killed by a signal nobody in the
    guest could send (retried by run_scenario), QMP lost while QEMU lives.
    The kernel's: a boot that printed the banner and never reached the
    shell, and a QEMU that stopped because the guest reset, halted or
    powered off (its reboot line on the console, or QEMU's SHUTDOWN/RESET
    event with guest: true), which no step asked for."""
    if obs.qemu_died_of_signal is not None:
        return False
    log = out / "console.log"
    console = log.read_text(errors="replace") if log.exists() else ""
    if LINUX_BANNER not in console:
        return False
    if isinstance(exc, BootTimeout):
        return True
    asked = any(e.get("event") in ("SHUTDOWN", "RESET") and (e.get("data") or {}).get("guest")
                for e in obs.qmp_events)
    return asked or any(line in console for line in KERNEL_STOPS)


def aborted(exc: BootTimeout | QemuExited | QmpError, result: ScenarioResult, obs: Observations,
             run: Progress, out: Path) -> None:
    current = run.current
    if current is not None:
        obs.ended = {"step": current.name, "how": "aborted", "detail": str(exc)}
    where = f" in step '{current.name}'" if current else ""
    if _guest_caused(exc, obs, out):
        # A verdict about the kernel, never "infrastructure" (issue 24).
        name, expected = (("guest responded", "every step completes") if current else
                          ("kernel boots to a shell", "the init script's ready line on the console"))
        result.verdict, result.reason = FAIL, f"{name}: no: {exc}{where}"
        result.checks.append(CheckResult(name, FAIL, expected, f"{exc}{where}\n{getattr(exc, 'excerpt', '')}"[-4000:],
                                         current.name if current else None))
    else:
        result.verdict, result.reason = ERROR, f"{exc}{where}"
    if isinstance(exc, QmpConnectionLost) or "exited" in str(exc):
        result.reason += f"; console log kept: {out / 'console.log'}"
