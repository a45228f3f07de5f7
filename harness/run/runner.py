"""Running one scenario on one kernel: boot once, carry out the steps,
evaluate the expectations, write the artifacts (the verdict and its
files: harness/run/scenario_verdict.py)."""
from __future__ import annotations

import contextlib
import json
import re
import signal
import time
from pathlib import Path
from typing import Callable, Iterator

from harness.core.errors import BootTimeout, ConsoleTimeout, GuestCrashed, HarnessError, QemuExited
from harness.expect import crosscheck
from harness.expect.checks import ERROR, FAIL, MODEL, NOT_COMPARED, PASS, SKIP, CheckResult
from harness.expect.observations import Observations, StepRecord
from harness.expect.result import ScenarioResult
from harness.guest import faults
from harness.guest import vcpu_probe as vcpus
from harness.guest.console import CRASH_PATTERNS, Console
from harness.guest.faults import FaultContext, ScenarioAborted
from harness.guest.machine import Machine, MachineSpec
from harness.guest.qmp import QmpClient
from harness.guest.qmp_types import QmpError
from harness.kernel import kconfig
from harness.kernel.kbuild import BuiltKernel
from harness.model import Features
from harness.model.prediction import NEVER
from harness.parsers import interrupts, klog, reports
from harness.parsers.symbolize import SystemMap
from harness.run.endings import Progress, aborted, crashed, hung
from harness.run.scenario_verdict import judge, unexpected_reports, write_artifacts
from harness.scenario import archskip
from harness.scenario.types import Scenario, Step
from harness.steps.base import StepContext
from harness.steps.fields import size_bytes
from harness.steps.registry import STEP_TYPES


class _Skipped(Exception):
    """The kernel lacks what the scenario requires (read from the guest)."""


# How a step that ends the scenario on purpose leaves the machine
# (crosscheck's outcome classes).
_ENDED = {"panic": "crashed", "kdb": "kdb-held"}


class ScenarioEnded(Exception):
    """A step ended the scenario on purpose (a panic step got its
    GUEST_PANICKED event; kdb keeps the machine): no further step runs."""


def _run_step(step: Step, live: StepContext, obs: Observations, online: set[int]) -> StepRecord:
    con = live.con
    start, t0 = con.position, time.monotonic()
    mark = live.qmp.mark()
    rec = StepRecord(step.name, step.kind, start, start, 0.0, sorted(online))
    STEP_TYPES[step.kind].execute(live, step, rec, obs, online)
    rec.end = con.position
    rec.detail["qmp_events"] = [e.name for e in live.qmp.events[mark:]]
    rec.seconds = time.monotonic() - t0
    return rec


def _requires(scn: Scenario, config: dict[str, str] | None) -> str | None:
    if not scn.requires:
        return None
    if config is None:
        return "kernel config unknown (no .config beside the image and no /proc/config.gz)"
    lacking = [opt for opt in scn.requires if not kconfig.has(config, opt)]
    return f"kernel lacks {', '.join(lacking)}" if lacking else None


def _guest_config(con: Console) -> dict[str, str] | None:
    res = con.run("zcat /proc/config.gz", timeout=20)
    return kconfig.parse(res.output) if res.status == 0 else None


# QEMU dying mid-run of a signal the harness did not send (the OOM killer,
# an operator's kill, QEMU itself crashing) says nothing about the kernel:
# infrastructure, the one kind of error that is retried (as a Dask worker
# that dies is). The scenario runs once more from a fresh boot, the first
# console log kept as console-rerun1.log, and the result says so, as a
# boot retry does ("boot retried" in its line, the summary and JUnit).
# Dying twice is an ERROR; a check that already FAILed is never rerun.
RUN_ATTEMPTS = 2


def run_scenario(scn: Scenario, kernel: BuiltKernel, initrd: Path, out: Path,
                 on_boot: Callable[[Machine, QmpClient], None] | None = None,
                 model_only: bool = False,
                 on_step: Callable[[Step], None] | None = None) -> ScenarioResult:
    """Boot, run the steps, judge. on_boot (for tests that break the
    machine from outside) is called once the guest is up, in each
    attempt. model_only: the scenario's own expectations are not evaluated
    and only the reference model's claims decide the verdict (the proof
    that the model alone tells a broken kernel). on_step (the live
    progress display) is called as each step starts."""
    out.mkdir(parents=True, exist_ok=True)
    started = (time.time(), time.monotonic())     # the cell's, over every attempt
    carried = Observations()
    infra = 0
    for attempt in range(1, RUN_ATTEMPTS + 1):
        result, obs = _attempt(scn, kernel, initrd, out, on_boot, model_only, on_step, carried, started)
        sig = obs.qemu_died_of_signal
        missed = _reboot_bringup_miss(obs.console) if result.verdict == FAIL else None
        last = attempt == RUN_ATTEMPTS
        if missed is None and (sig is None or result.verdict != ERROR or last
                               or any(c.verdict == FAIL for c in result.checks)):
            result.infra_retries = infra
            return result
        if last:
            result.infra_retries = infra
            return result
        kept = out / f"console-rerun{attempt}.log"
        (out / "console.log").replace(kept)
        for retry in obs.boot_retries[len(carried.boot_retries):]:
            # this attempt's own boot retries: their logs must not meet the next attempt's
            old = out / retry["console_log"]
            retry["console_log"] = f"console-rerun{attempt}-{old.name.removeprefix('console-')}"
            old.replace(out / retry["console_log"])
        where = f" in step '{obs.ended['step']}'" if obs.ended else ""
        if missed is not None:
            retry = {"attempt": attempt, "console_log": kept.name, "cpus": None,
                     "reason": f"after the guest's reboot{where} {missed}; the scenario ran again"}
        else:
            infra += 1
            retry = {"attempt": attempt, "console_log": kept.name,
                     "reason": f"QEMU died of {_signal_name(sig)}{where}, not sent by the harness; "
                               "the scenario ran again"}
        carried.boot_retries = obs.boot_retries + [retry]
        carried.qemu_spans = obs.qemu_spans
    raise AssertionError("unreachable")


# A reboot the scenario asks for boots the kernel again, and that boot can
# miss SMP bring-up as the first one can (3 of 203 boots at -j 2,
# docs/measurements.md §bringup): in the CI run of 2026-12-07
# ipi-stop-reboot [default] came back with 3 of 4 CPUs ("CPU1: failed to come
# online") and failed. One boot cannot tell host timing from the kernel, so
# such a run goes once more from a fresh boot, both console logs kept; a pass
# then is FLAKY, a second miss fails. Only a miss after "reboot: Restarting
# system": a hotplug online that fails is what hotplug scenarios test.
_REBOOT = re.compile(r"reboot: Restarting system")
_MISS = re.compile(r"CPU\d+: failed to come online")


def _reboot_bringup_miss(console: str) -> str | None:
    """The kernel's words when a boot after a guest reboot missed bring-up."""
    starts = [m.end() for m in _REBOOT.finditer(console)]
    if not starts:
        return None
    m = _MISS.search(console, starts[0])
    return f"'{m.group(0)}'" if m else None


def _signal_name(sig: int) -> str:
    try:
        return f"signal {sig} ({signal.Signals(sig).name})"
    except ValueError:
        return f"signal {sig}"


def _attempt(scn: Scenario, kernel: BuiltKernel, initrd: Path, out: Path,
             on_boot: Callable[[Machine, QmpClient], None] | None, model_only: bool,
             on_step: Callable[[Step], None] | None, carried: Observations,
             started: tuple[float, float]) -> tuple[ScenarioResult, Observations]:
    """One boot-to-verdict pass; carried: the earlier attempts' boot
    retries and QEMU spans, which this one reports too."""
    result = ScenarioResult(scn, kernel.recipe_name, PASS, artifacts=out, started_at=started[0])
    t0 = started[1]
    config = kernel.config
    spec = _machine_spec(scn, kernel, initrd)
    obs = Observations(system_map=kernel.system_map, boot_retries=list(carried.boot_retries),
                       qemu_spans=list(carried.qemu_spans))
    if reason := _unbootable(scn, kernel, config):
        # Not booted: the same artifacts as any verdict (the model still
        # says what it would have predicted).
        result.verdict, result.reason = SKIP, reason
        judge(result, scn, obs, _model(scn, kernel, config, spec, obs, out)[0], [], model_only)
        _finished(result, obs, t0)
        write_artifacts(result, obs)
        return result, obs

    run = Progress(set(range(scn.machine.cpus)), config)
    try:
        _boot_and_run(scn, kernel, spec, out, on_boot, on_step, result, obs, run)
    except _Skipped as exc:
        result.verdict, result.reason = SKIP, str(exc)
    except ScenarioEnded:
        # What the step asked for: the scenario ends here and the
        # expectations judge what happened.
        run.current = None
    except GuestCrashed as exc:
        crashed(exc, result, obs, run)
    except ConsoleTimeout as exc:
        hung(exc, result, obs, run)
    except ScenarioAborted as exc:
        result.verdict, result.reason = ERROR, f"{exc} (in step '{run.current.name if run.current else '?'}')"
    except (BootTimeout, QemuExited, QmpError) as exc:
        aborted(exc, result, obs, run, out)
    except HarnessError as exc:
        result.verdict, result.reason = ERROR, str(exc)
    model_checks, predicted = _model(scn, kernel, run.config, spec, obs, out)
    judge(result, scn, obs, model_checks, run.skipped, model_only)
    unexpected_reports(result, scn, obs, predicted, model_only)
    _finished(result, obs, t0)
    write_artifacts(result, obs)
    return result, obs


def _machine_spec(scn: Scenario, kernel: BuiltKernel, initrd: Path) -> MachineSpec:
    m = scn.machine
    return MachineSpec(kernel.arch, kernel.image, initrd, cpus=m.cpus, memory=m.memory,
                       cmdline=kernel.cmdline + m.cmdline, qemu_args=m.qemu_args, no_reboot=not m.reboot,
                       balloon=any("balloon" in STEP_TYPES[st.kind].needs(st.args) for st in scn.steps))


def _unbootable(scn: Scenario, kernel: BuiltKernel, config: dict[str, str] | None) -> str | None:
    """Why the scenario is skipped without booting: not for this
    architecture, or the kernel's .config lacks what it requires."""
    if reason := archskip.reason(scn, kernel.arch.name):
        return reason
    return _requires(scn, config) if config is not None else None


def _boot_and_run(scn: Scenario, kernel: BuiltKernel, spec: MachineSpec, out: Path,
                  on_boot: Callable[[Machine, QmpClient], None] | None,
                  on_step: Callable[[Step], None] | None, result: ScenarioResult,
                  obs: Observations, run: Progress) -> None:
    """Boot, set up, run the steps; whatever ends the run early is raised
    (_attempt turns it into the verdict), with the console and the harts
    kept in obs while the machine is still there."""
    with _booted(spec, out, scn.machine.boot_timeout, obs) as (machine, qmp):
        try:
            _set_up(scn, kernel, machine, qmp, on_boot, result, obs, run)
            _run_steps(scn, on_step, result, obs, run)
        finally:
            if machine.console is not None:
                obs.console = machine.console.text()
            if run.live is not None:
                obs.harts = run.live.fault.known_harts or {}


def _set_up(scn: Scenario, kernel: BuiltKernel, machine: Machine, qmp: QmpClient,
            on_boot: Callable[[Machine, QmpClient], None] | None, result: ScenarioResult,
            obs: Observations, run: Progress) -> None:
    """The booted guest, before the first step: the step context, what the
    guest says of itself, every CPU online, the kernel config if the image
    had none (_Skipped when it lacks what the scenario requires)."""
    m = scn.machine
    con = machine.console
    assert con is not None and machine.child is not None
    con.watch = _panic_watch(con, qmp)
    run.live = StepContext(FaultContext(con, qmp, machine.child.pid, m.reboot, m.boot_timeout,
                                        size_bytes(m.memory)),
                           SystemMap.load(kernel.system_map), kernel.arch)
    if any("harts" in STEP_TYPES[st.kind].needs(st.args) for st in scn.steps):
        # Read now, while every CPU is online (/proc/cpuinfo lists
        # only online ones) and the console is not held by kdb.
        run.live.fault.known_harts = faults.read_harts(con, 20)
    obs.kernel_release = con.kernel_release
    obs.cpus = con.cpus
    if on_boot is not None:
        on_boot(machine, qmp)
    if con.cpus is not None and con.cpus < m.cpus:
        # Seen on the 3908ba2e0b24 revert: "CPUn: failed to come online".
        result.checks.append(CheckResult(
            "all CPUs came online at boot", FAIL, f"{m.cpus} CPUs online",
            f"{con.cpus} CPUs online", None))
        run.online = set(range(con.cpus))
    # The IPI rows right after boot, compared with the rows the
    # model expects of the reference kernel (model: boot:ipi_rows).
    obs.boot_ipi_rows = interrupts.parse(con.run(["cat", "/proc/interrupts"]).output).ipi_names()
    if run.config is None and scn.requires:
        run.config = _guest_config(con)
        if reason := _requires(scn, run.config):
            raise _Skipped(reason)


def _run_steps(scn: Scenario, on_step: Callable[[Step], None] | None, result: ScenarioResult,
               obs: Observations, run: Progress) -> None:
    """Each step in turn, its record in obs and its own check in result;
    ScenarioEnded when a step ends the scenario on purpose."""
    live = run.live
    assert live is not None
    for step in scn.steps:
        run.current, run.step_start = step, live.con.position
        if on_step is not None:
            on_step(step)
        try:
            rec = _run_step(step, live, obs, run.online)
        except ConsoleTimeout:
            run.hang_vcpus = _hang_probe(live, obs)
            raise
        obs.steps[step.name] = rec
        if "skipped" in rec.detail:
            run.skipped.append(f"step '{step.name}': {rec.detail['skipped']}")
        if (failed := STEP_TYPES[step.kind].verify(step, rec)) is not None:
            result.checks.append(CheckResult(f"step {step.name}", FAIL, *failed, step.name))
        if "ends_scenario" in rec.detail:
            obs.ended = {"step": step.name, "how": _ENDED.get(step.kind, "completed"),
                         "detail": rec.detail["ends_scenario"]}
            raise ScenarioEnded(rec.detail["ends_scenario"])
    run.current = None


def _finished(result: ScenarioResult, obs: Observations, t0: float) -> None:
    result.seconds = time.monotonic() - t0
    result.ended_at = time.time()
    result.qemu_spans = list(obs.qemu_spans)


# A boot where a secondary CPU misses the kernel's 1 s bring-up wait is
# tried once more. Measured: "CPU1: failed to come online" in 3 of 203 boots
# at -j 2 (bench/bringup, docs/measurements.md §bringup; earlier about 1 in
# 250 over ~700 mostly -j 1 logs), always CPU 1, the first hart started. The harness cannot tell a host
# or firmware race from a kernel bug on one boot, so it boots again, keeps
# the first console log and says so in the verdict; a kernel that does it
# twice still fails "all CPUs came online at boot".
BOOT_ATTEMPTS = 2


@contextlib.contextmanager
def _booted(spec: MachineSpec, out: Path, boot_timeout: float,
            obs: Observations) -> Iterator[tuple[Machine, QmpClient]]:
    """A booted machine with QMP connected while it booted (so every event
    of the run is recorded), QEMU ended and QMP closed on exit."""
    for attempt in range(1, BOOT_ATTEMPTS + 1):
        machine = Machine(spec, out, boot_timeout=boot_timeout)
        try:
            with machine:
                qmp = QmpClient.for_machine(machine).connect()
                try:
                    obs.boot_seconds = round(machine.boot(), 3)
                    con = machine.console
                    assert con is not None
                    if attempt < BOOT_ATTEMPTS and con.cpus is not None and con.cpus < spec.cpus:
                        # The kernel's own words when it gave up on a CPU (report type cpu-hotplug).
                        lines = klog.split(con.text())
                        seen = next((r for r in reports.parse(lines) if r.type == reports.CPU_HOTPLUG), None)
                        kept = out / f"console-boot{attempt}.log"
                        machine.console_log.rename(kept)
                        obs.boot_retries.append({
                            "attempt": attempt, "cpus": con.cpus, "console_log": kept.name,
                            "reason": seen.text(lines) if seen else f"{con.cpus} of {spec.cpus} CPUs online"})
                        continue
                    yield machine, qmp
                    return
                finally:
                    qmp.close()
                    obs.qmp_events = [json.loads(e.to_json()) for e in qmp.events]
        finally:
            if machine.wall_span is not None:
                obs.qemu_spans.append([round(t, 3) for t in machine.wall_span])
            if machine.died_of_signal is not None:
                obs.qemu_died_of_signal = machine.died_of_signal


def _hang_probe(live: StepContext, obs: Observations) -> str:
    """Where every vCPU is when the guest stops answering: the ground truth
    a console that has gone quiet cannot give. Best effort, since QEMU or
    QMP may be what failed; returns a one-line summary for the verdict."""
    try:
        found = vcpus.probe(live.qmp, vcpus.HANG_PROBE, live.system_map, live.arch,
                            live.fault.known_harts or {}, rounds=3, gap=0.2)
    except (QmpError, QemuExited) as exc:
        return f"not probed ({exc})"
    obs.probes[vcpus.HANG_PROBE] = found
    return found.summary()


def _panic_watch(con: Console, qmp: QmpClient) -> Callable[[], None]:
    """A console watch that ends any wait when QEMU reports GUEST_PANICKED,
    even if the panic never reaches the console (e.g. printk stuck)."""
    seen = [0]

    def watch() -> None:
        events = qmp.events
        fresh, seen[0] = events[seen[0]:], len(events)
        for ev in fresh:
            if ev.name == "GUEST_PANICKED" and "panic" not in con.allowed_crashes:
                con.settle(quiet=0.5, limit=3.0)
                text = con.text(max(0, con.position - 20000))
                m = re.search(CRASH_PATTERNS[0][1], text)
                title = m.group(0).strip() if m else f"guest panicked (QMP GUEST_PANICKED {ev.data})"
                raise GuestCrashed(title, text[-8000:], con.argv, con.log_path)
    return watch


def _model(scn: Scenario, kernel: BuiltKernel, config: dict[str, str] | None, spec: MachineSpec,
           obs: Observations, out: Path) -> tuple[list[CheckResult], list[str]]:
    """Run the reference model over the steps, write its predictions next to
    the observations, and return the claim-by-claim comparison and the
    patterns of every console report the model predicts (must or may). The
    model predicts the kernel the recipe declares, never the kernel under test."""
    try:
        features = Features.reference(config, arch=kernel.arch.name, cmdline=spec.kernel_cmdline(),
                                      without=kernel.model_without)
        run = crosscheck.run_model(scn, features)
        checks = crosscheck.crosscheck(run, obs)
    except Exception as exc:  # noqa: BLE001 - a model bug must not hide the kernel's verdict
        (out / "predictions.json").write_text(json.dumps({"error": repr(exc)}))
        return [CheckResult("model: predictions", ERROR, "the model runs", f"model error: {exc!r}",
                            origin=MODEL)], []
    doc = run.to_json()
    judged = [c for c in checks if c.verdict != NOT_COMPARED]
    doc["comparison"] = {"compared": len(judged), "passed": sum(c.verdict == PASS for c in judged),
                         "not_compared": [c.to_json() for c in checks if c.verdict == NOT_COMPARED],
                         "disagreements": [c.to_json() for c in judged if c.verdict != PASS]}
    (out / "predictions.json").write_text(json.dumps(doc, indent=2, default=str))
    return checks, [r.pattern for r in run.console_lines() if r.when != NEVER]
