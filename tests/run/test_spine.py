"""End to end on real kernels built from the Debian source: the backtrace
scenario passes with f15c21a3de1b and fails without it; crashes, hangs and
interrupts end quickly and leave no QEMU behind."""
from __future__ import annotations

import json
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from helpers import PASSED, ROOT, RVHARNESS, qemu_pids_mentioning, rvharness

from harness.core.arch import RISCV64
from harness.guest.machine import Machine, MachineSpec
from harness.kernel import kbuild
from harness.kernel.recipe import load_recipe

pytestmark = pytest.mark.integration


def qmp_socket_of(artifacts: Path) -> str:
    argv = (artifacts / "qemu.argv").read_text().splitlines()
    return next(a for a in argv if a.startswith("unix:")).split(",")[0][5:]


def assert_no_qemu(out: Path) -> None:
    argv_files = list(out.rglob("qemu.argv"))
    assert argv_files, f"no QEMU was started under {out}"
    for f in argv_files:
        assert qemu_pids_mentioning(qmp_socket_of(f.parent)) == [], f"QEMU left behind for {f}"


def scenario_file(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(text)
    return p


def test_backtrace_scenario_passes_on_default_kernel(default_kernel, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = rvharness("run", "scenarios/backtrace-ipi.yaml", "--out", str(out), "--junit", str(tmp_path / "j.xml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS  backtrace-ipi [default]" in proc.stdout
    assert "1 passed, 0 failed" in proc.stdout
    suites = ET.parse(tmp_path / "j.xml").getroot().findall("testsuite")
    assert [s.get("name") for s in suites] == ["default/backtrace-ipi"]
    cases = suites[0].findall("testcase")
    names = {c.get("name") for c in cases}
    assert {"backtrace IPI counted once on every other CPU", "every online CPU accounted for"} <= names
    assert "model: every claim holds" in names   # the model's claims, one testcase (issue 13)
    assert not suites[0].findall(".//failure") and not suites[0].findall(".//error")
    art = out / "default" / "backtrace-ipi"
    assert "NMI backtrace for cpu 1" in (art / "console.log").read_text()
    obs = json.loads((art / "observations.json").read_text())
    assert obs["steps"]["trigger"]["backtraces"]["sender"] == 1
    assert obs["snapshots"]["after"]["rows"]["CPU backtrace interrupts"] == {"0": 1, "1": 0, "2": 1, "3": 1}
    verdicts = json.loads((art / "verdicts.json").read_text())
    own = [c for c in verdicts["checks"] if not c["name"].startswith("model: ")]
    # (FLAKY adds the testcase "passed on a retry")
    assert verdicts["verdict"] in PASSED and len(own) + 1 + (verdicts["verdict"] == "flaky") == len(cases)
    assert (art / "expectations.json").exists()
    assert_no_qemu(out)


def test_reverted_backtrace_commit_is_caught(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = rvharness("run", "scenarios/", "--patch", "kernels/patches/revert-f15c21a3de1b.patch",
                     "--out", str(out))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAIL  backtrace-ipi [default+revert-f15c21a3de1b]" in proc.stdout
    assert "no 'CPU backtrace interrupts' row in /proc/interrupts" in proc.stdout
    root = ET.parse(out / "junit.xml").getroot()
    failures = root.findall(".//failure")
    assert any("CPU backtrace interrupts" in (f.get("message") or "") for f in failures)
    # The fallback path printed "CPUn:" dumps instead of IPI backtraces.
    assert any("fallback" in (f.text or "") for f in failures)
    assert (out / "default+revert-f15c21a3de1b" / "backtrace-ipi" / "console.log").stat().st_size > 0
    assert_no_qemu(out)


def test_panic_ends_in_seconds_with_verdict(default_kernel, tmp_path: Path) -> None:
    scn = scenario_file(tmp_path, """\
name: panics
steps:
  - shell: "echo hello"
  - name: crash
    sysrq: {key: c, cpu: 2}
    timeout: 120
expect:
  - exit_status: {step: crash, status: 0}
""")
    out = tmp_path / "out"
    t0 = time.monotonic()
    proc = rvharness("run", str(scn), "--out", str(out))
    elapsed = time.monotonic() - t0
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "kernel crashed in step 'crash': Kernel panic - not syncing: sysrq triggered crash" in proc.stdout
    assert elapsed < 30, f"took {elapsed:.1f}s: waited for the step timeout instead of the panic"
    verdicts = json.loads((out / "default" / "panics" / "verdicts.json").read_text())
    assert verdicts["verdict"] == "fail"
    # The crash fails its check; the expectation it cut short is an error;
    # the panic is what the model predicts of sysrq c, so it is no
    # unexpected report (a check every judged run states).
    assert [(c["name"], c["verdict"]) for c in verdicts["checks"]] == [
        ("kernel did not crash", "fail"), ("exit_status: step 'crash' exits 0", "error"),
        ("no unexpected kernel report", "pass")]
    assert "sysrq triggered crash" in (out / "default" / "panics" / "console.log").read_text()
    assert_no_qemu(out)


def test_hung_command_times_out_and_cleans_up(default_kernel, tmp_path: Path) -> None:
    # The shell's command never returns: CPU 1 spins with interrupts off.
    scn = scenario_file(tmp_path, """\
name: hangs
machine: {cpus: 2}
steps:
  - name: stuck
    shell: "taskset -c 1 sh -c 'echo HARDLOCKUP > /sys/kernel/debug/provoke-crash/DIRECT'"
    timeout: 3
""")
    out = tmp_path / "out"
    t0 = time.monotonic()
    proc = rvharness("run", str(scn), "--out", str(out))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "guest hung in step 'stuck'" in proc.stdout
    assert time.monotonic() - t0 < 30
    assert_no_qemu(out)
    # The harness looked at the vCPUs through QMP before ending QEMU.
    obs = json.loads((out / "default" / "hangs" / "observations.json").read_text())
    hang = obs["vcpu_probes"]["on-hang"]
    assert len(hang["samples"]) == 3 and all(len(rnd) == 2 for rnd in hang["samples"])
    stuck = {s["hart"] for rnd in hang["samples"] for s in rnd if s["location"] == "lkdtm"}
    assert len(stuck) == 1, hang["summary"]
    assert "lkdtm" in proc.stdout and "vCPUs:" in proc.stdout


def start_sleeping_run(tmp_path: Path) -> tuple[subprocess.Popen, Path, Path]:
    """An `rvharness run` whose guest sits in `sleep 1000`; returns once the
    command is on the console: (process, artifact dir, console log)."""
    scn = scenario_file(tmp_path, "steps:\n  - shell: 'sleep 1000'\n    timeout: 600\n")
    out = tmp_path / "out"
    proc = subprocess.Popen([*RVHARNESS, "run", str(scn), "--out", str(out)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = out / "default" / "s" / "console.log"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "sleep 1000" not in (log.read_text() if log.exists() else ""):
        time.sleep(0.2)
    assert "sleep 1000" in log.read_text()
    return proc, out, log


def test_ctrl_c_kills_qemu_and_keeps_log(default_kernel, tmp_path: Path) -> None:
    proc, out, log = start_sleeping_run(tmp_path)
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.terminate()    # the harness ends its QEMU on SIGTERM
            proc.wait(30)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert "rvharness-ready" in log.read_text()
    assert_no_qemu(out)


def test_console_commands(default_kernel, initrd, tmp_path: Path) -> None:
    spec = MachineSpec(RISCV64, default_kernel.image, initrd, cpus=2)
    with Machine(spec, tmp_path) as m:
        boot = m.boot()
        assert boot < 20
        con = m.console
        assert con.cpus == 2
        assert con.run("sh -c 'exit 7'").status == 7
        assert con.run(["echo", "a b", "$HOME"]).output == "a b $HOME\n"
        # A kernel message interleaved with the command's own output. The
        # sleep lets the console print it before "two": without it, it once
        # came after the end sentinel and the test exercised nothing.
        r = con.run("echo one; echo '<4>rvh-kmsg-test' > /dev/kmsg; sleep 0.3; echo two")
        assert r.status == 0
        assert "rvh-kmsg-test" in r.raw
        assert r.output == "one\ntwo\n"
        r = con.sysrq("l", cpu=0)
        assert "NMI backtrace for cpu 0" in con.text(r.start, r.end)
        pid = m.child.pid
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
    assert "rvharness-ready" in (tmp_path / "console.log").read_text()


def test_cache_hit_is_fast(default_kernel) -> None:
    t0 = time.monotonic()
    again = kbuild.build(load_recipe(ROOT / "kernels" / "default.yaml"))
    assert again.key == default_kernel.key
    assert time.monotonic() - t0 < 1.0


def test_sigterm_cleans_up_like_ctrl_c(default_kernel, tmp_path: Path) -> None:
    proc, out, log = start_sleeping_run(tmp_path)
    run_dir = Path(qmp_socket_of(log.parent)).parent
    assert run_dir.is_dir() and (run_dir.stat().st_mode & 0o777) == 0o700
    proc.terminate()
    proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert not run_dir.exists(), "private run directory left behind"
    assert_no_qemu(out)


def test_boot_with_a_cpu_missing_is_retried_once_and_reported(default_kernel, tmp_path: Path) -> None:
    # maxcpus=2 makes every boot come up short, so both attempts do.
    scn = scenario_file(tmp_path, """\
name: short
machine: {cpus: 4, cmdline: [maxcpus=2]}
steps:
  - shell: "true"
""")
    out = tmp_path / "out"
    proc = rvharness("run", str(scn), "--out", str(out))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "boot retried: 2 of 4 CPUs online" in proc.stdout
    art = out / "default" / "short"
    obs = json.loads((art / "observations.json").read_text())
    assert obs["boot_retries"] == [{"attempt": 1, "cpus": 2, "console_log": "console-boot1.log",
                                    "reason": "2 of 4 CPUs online"}]
    assert "rvharness-ready" in (art / "console-boot1.log").read_text()
    # Both QEMUs' lifetimes, one after the other, inside the cell's times.
    (a0, a1), (b0, b1) = obs["qemu_spans"]
    entry = json.loads((out / "summary.json").read_text())[0]
    assert entry["started_at"] <= a0 < a1 <= b0 < b1 <= entry["ended_at"]
    assert entry["qemu_spans"] == obs["qemu_spans"]
    assert "rvharness-ready" in (art / "console.log").read_text()
    checks = json.loads((art / "verdicts.json").read_text())["checks"]
    assert [c["verdict"] for c in checks if c["name"] == "all CPUs came online at boot"] == ["fail"]
    # The retry is visible in the scenario's line, the run's summary and JUnit.
    assert "boot retried 1x" in proc.stdout and "1 boot retried" in proc.stdout
    assert "boot retried 1x" in (out / "junit.xml").read_text()
    assert json.loads((art / "verdicts.json").read_text())["boot_retries"] == 1
    assert_no_qemu(out)


def test_a_skipped_scenario_writes_every_artifact_and_exits_5(default_kernel, tmp_path: Path) -> None:
    scn = scenario_file(tmp_path, """name: needs-more
requires: [CONFIG_NOT_IN_THIS_KERNEL]
steps:
  - snapshot: a
  - sysrq: {key: l, cpu: 1}
  - snapshot: b
expect:
  - model: true
""")
    out = tmp_path / "out"
    proc = rvharness("run", str(scn), "--out", str(out))
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert "every scenario was skipped" in proc.stderr
    art = out / "default" / "needs-more"
    for name in ("expectations.json", "observations.json", "predictions.json", "verdicts.json"):
        assert (art / name).exists(), name
    assert json.loads((art / "verdicts.json").read_text())["verdict"] == "skip"
    assert json.loads((art / "predictions.json").read_text())["steps"]


def test_repeats_runs_the_scenario_twice_and_counts(default_kernel, tmp_path: Path) -> None:
    """run --repeats 2: two fresh boots, each with its own console log, one
    result with the counts (the decision itself: tests/run/test_repeats_verdict.py)."""
    out = tmp_path / "out"
    proc = rvharness("run", "scenarios/backtrace-ipi.yaml", "--repeats", "2", "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    art = out / "default" / "backtrace-ipi"
    logs = [art / f"run-{i}" / "console.log" for i in (1, 2)]
    assert all("NMI backtrace for cpu 1" in log.read_text() for log in logs)
    assert logs[0].stat().st_ino != logs[1].stat().st_ino
    doc = json.loads((art / "repeats.json").read_text())
    assert (doc["runs"], doc["judged"]) == (2, 2) and doc["verdict"] in PASSED
    counts = {c["name"]: c for c in doc["checks"]}
    own = [c["name"] for c in json.loads((logs[0].parent / "verdicts.json").read_text())["checks"]
           if not c["name"].startswith("model: ")]
    assert own and all((counts[n]["failed"], counts[n]["runs"]) == (0, 2) for n in own)
    assert counts[own[0]]["rate_seen_95"] == pytest.approx(0.7764, abs=1e-4)
    assert [a["console_logs"][0] for a in doc["attempts"]] == ["run-1/console.log", "run-2/console.log"]
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary) == 1 and summary[0]["repeats"]["runs"] == 2
    if doc["verdict"] == "pass":
        assert "PASS  backtrace-ipi [default] 0/2 runs failed" in proc.stdout
    assert_no_qemu(out)
