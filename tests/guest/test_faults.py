"""Faults and probes through QMP on the real kernel: every fault step, the
two outcomes of a reset, and QEMU or its QMP connection going away under
the harness."""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from helpers import ROOT, qemu_children

from harness.expect.checks import ERROR, FAIL, FLAKY, PASS, SKIP
from harness.expect.result import ScenarioResult
from harness.run.runner import run_scenario
from harness.scenario import parse as scenario

pytestmark = pytest.mark.integration

QMP_SCENARIOS = ROOT / "scenarios/qmp"
DATA = ROOT / "tests/data/scenarios"


def _run(path: Path, kernel, initrd, out: Path, on_boot=None) -> tuple[ScenarioResult, dict]:
    result = run_scenario(scenario.load(path), kernel, initrd, out, on_boot=on_boot)
    obs_file = out / "observations.json"
    obs = json.loads(obs_file.read_text()) if obs_file.exists() else {}
    assert (out / "console.log").stat().st_size > 0
    assert (out / "qmp-events.jsonl").exists()
    assert not qemu_children(), "QEMU left behind"
    return result, obs


def _failures(result: ScenarioResult) -> str:
    return result.reason + "\n" + "\n".join(f"{c.name}: {c.observed}" for c in result.failures())


def test_pause_stops_the_guest_clock(default_kernel, initrd, tmp_path: Path) -> None:
    result, obs = _run(QMP_SCENARIOS / "pause.yaml", default_kernel, initrd, tmp_path)
    assert result.verdict in (PASS, FLAKY), _failures(result)
    step = obs["steps"]["freeze"]
    assert 2.9 <= step["stopped_seconds"] <= 3.5
    # The guest saw about host time minus the 3 s it was stopped.
    assert 2.5 <= step["guest_lag_seconds"] <= 3.5, step
    assert step["qmp_events"][:2] == ["STOP", "RESUME"]


def test_balloon_squeezes_and_releases(default_kernel, initrd, tmp_path: Path) -> None:
    result, obs = _run(QMP_SCENARIOS / "balloon.yaml", default_kernel, initrd, tmp_path)
    assert result.verdict in (PASS, FLAKY), _failures(result)
    step = obs["steps"]["squeeze"]
    assert step["squeezed_mib"] <= 193 and step["restored_mib"] >= 511, step
    before, squeezed, after = step["mem_available_mib"]
    assert squeezed < before - 200 and after > squeezed + 200, step
    assert "-device" in (tmp_path / "qemu.argv").read_text()


def test_nmi_is_skipped_with_qemus_reason(default_kernel, initrd, tmp_path: Path) -> None:
    result, _ = _run(QMP_SCENARIOS / "nmi.yaml", default_kernel, initrd, tmp_path)
    assert result.verdict == SKIP
    assert "inject-nmi" in result.reason and "not currently supported" in result.reason


def test_panic_ends_the_scenario_on_guest_panicked(default_kernel, initrd, tmp_path: Path) -> None:
    result, obs = _run(QMP_SCENARIOS / "panic.yaml", default_kernel, initrd, tmp_path)
    assert result.verdict in (PASS, FLAKY), _failures(result)
    assert obs["steps"]["crash"]["event"]["name"] == "GUEST_PANICKED"
    assert "never-runs" not in obs["steps"]
    events = [json.loads(line)["event"] for line in (tmp_path / "qmp-events.jsonl").read_text().splitlines()]
    assert "GUEST_PANICKED" in events


def test_reset_with_reboot_resyncs(default_kernel, initrd, tmp_path: Path) -> None:
    result, obs = _run(QMP_SCENARIOS / "reset-reboot.yaml", default_kernel, initrd, tmp_path)
    assert result.verdict in (PASS, FLAKY), _failures(result)
    step = obs["steps"]["reset"]
    assert step["event"]["name"] == "RESET" and step["interrupted_command"] == "sleep 30"
    assert "-no-reboot" not in (tmp_path / "qemu.argv").read_text()
    assert (tmp_path / "console.log").read_text().count("rvharness-ready") == 2


def test_reset_without_reboot_aborts(default_kernel, initrd, tmp_path: Path) -> None:
    result, obs = _run(DATA / "reset-no-reboot.yaml", default_kernel, initrd, tmp_path)
    assert result.verdict == ERROR
    assert result.reason.startswith("aborted: the guest was reset") and "'reset'" in result.reason
    assert "never-runs" not in obs["steps"]
    events = [json.loads(line) for line in (tmp_path / "qmp-events.jsonl").read_text().splitlines()]
    assert any(e["event"] == "SHUTDOWN" and e["data"]["reason"] == "host-qmp-system-reset" for e in events)


def test_starve_slows_one_vcpu(default_kernel, initrd, tmp_path: Path) -> None:
    result, obs = _run(QMP_SCENARIOS / "starve.yaml", default_kernel, initrd, tmp_path)
    assert result.verdict in (PASS, FLAKY), _failures(result)
    step = obs["steps"]["starved"]
    share = step["vcpu_cpu_share"]
    # CPU 1 runs a busy loop: unstarved its thread would take a whole host core.
    assert share["1"] < 0.05, step
    assert step["during"]["status"] == 0


def test_vcpu_expectation_can_fail(default_kernel, initrd, tmp_path: Path) -> None:
    result, obs = _run(DATA / "wrong-location.yaml", default_kernel, initrd, tmp_path)
    assert result.verdict == FAIL
    (check,) = result.failures()
    assert "CPU 1 in lkdtm" in check.observed, check.observed
    assert set(obs["vcpu_probes"]["stuck"]["locations"]["1"]) == {"lkdtm"}


def test_qemu_killed_from_outside(default_kernel, initrd, tmp_path: Path) -> None:
    def kill_soon(machine, qmp) -> None:
        pid = machine.child.pid
        threading.Timer(1.0, os.kill, (pid, signal.SIGKILL)).start()

    t0 = time.monotonic()
    result, obs = _run(DATA / "long-sleep.yaml", default_kernel, initrd, tmp_path, on_boot=kill_soon)
    assert time.monotonic() - t0 < 45
    # Killed in both attempts: infrastructure twice is an ERROR, each console log kept.
    assert result.verdict == ERROR
    assert "QEMU exited" in result.reason and "console log kept" in result.reason, result.reason
    assert "QEMU died of signal 9 (SIGKILL) in step 'wait', not sent by the harness" in result.reason
    assert result.boot_retries == 1 and result.infra_retries == 1 and len(result.qemu_spans) == 2
    assert obs["qemu_died_of_signal"] == 9
    assert "rvharness-ready" in (tmp_path / "console.log").read_text()
    assert "rvharness-ready" in (tmp_path / "console-rerun1.log").read_text()


def test_qemu_killed_once_runs_again_and_passes(default_kernel, initrd, tmp_path: Path) -> None:
    attempts = []

    def kill_first(machine, qmp) -> None:
        attempts.append(machine.child.pid)
        if len(attempts) == 1:
            threading.Timer(1.0, os.kill, (machine.child.pid, signal.SIGKILL)).start()

    result, obs = _run(DATA / "long-sleep.yaml", default_kernel, initrd, tmp_path, on_boot=kill_first)
    assert len(attempts) == 2
    # Passed only on the retry: FLAKY, both attempts' consoles kept (run exits 0 unless --flaky fail).
    assert result.verdict == FLAKY, result.reason
    assert result.retried_logs == ["console-rerun1.log"]
    assert result.boot_retries == result.infra_retries == 1
    assert "boot retried: QEMU died of signal 9 (SIGKILL)" in result.reason
    assert obs["boot_retries"][0]["console_log"] == "console-rerun1.log"
    assert obs["qemu_died_of_signal"] is None         # the second QEMU was ended by the harness
    assert "rvharness-ready" in (tmp_path / "console-rerun1.log").read_text()


def test_qemu_ended_by_the_harness_is_not_a_death(default_kernel, initrd, tmp_path: Path) -> None:
    """Machine.close's own SIGTERM/SIGKILL never counts as QEMU dying."""
    from harness.guest.machine import Machine, MachineSpec
    spec = MachineSpec(default_kernel.arch, default_kernel.image, initrd, cpus=1)
    with Machine(spec, tmp_path) as m:
        m.boot()
    assert m.died_of_signal is None


def test_qmp_connection_lost(default_kernel, initrd, tmp_path: Path) -> None:
    def drop_connection(machine, qmp) -> None:
        # The monitor connection goes away while QEMU keeps running.
        qmp._run(qmp._qmp.disconnect(), 5.0)

    t0 = time.monotonic()
    result, obs = _run(DATA / "long-sleep.yaml", default_kernel, initrd, tmp_path, on_boot=drop_connection)
    assert time.monotonic() - t0 < 40
    assert result.verdict == ERROR
    assert "connection lost" in result.reason and "'freeze'" in result.reason, result.reason
    assert "wait" in obs["steps"]      # the console-only step before it still ran
