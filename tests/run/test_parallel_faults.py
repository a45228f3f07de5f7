"""Parallel runs under faults, on loopback only: a real Dask scheduler
(`dask scheduler`) and real `rvharness worker` processes on 127.0.0.1 with
random free ports, real QEMU and the cached default and revert kernels.

- a worker SIGKILLed while it boots a VM: every verdict still comes, the
  killed cell ran at most twice, each kernel key was built once, no QEMU
  is left and the JUnit is complete;
- the scheduler killed mid-run: the client stops with a message, and
  --resume runs only the cells without a verdict;
- three shards run one after another and merged give the verdicts and
  the JUnit test set of one unsharded run.
Every wait is bounded in time."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import PASSED, ROOT, RVHARNESS, _processes, rvharness
from junitparser import JUnitXml

from harness.core.children import die_with_harness

SCENARIOS = ["scenarios/backtrace-ipi.yaml", "scenarios/ipi-stop-reboot.yaml", "scenarios/kdb-roundup.yaml"]
KERNELS = ["--kernel", "kernels/default.yaml", "--kernel", "kernels/revert-f15c21a3de1b.yaml"]
DASK = str(Path(sys.executable).parent / "dask")


def _spawn(argv: list[str], log: Path) -> subprocess.Popen:
    fh = open(log, "w")
    return subprocess.Popen(argv, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT,
                            preexec_fn=die_with_harness(), env={**os.environ, "PYTHONPATH": str(ROOT)})


def _wait_for(what: str, cond, timeout: float, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)


class Cluster:
    """A scheduler and named workers on 127.0.0.1, each with its own log."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.file = tmp / "scheduler.json"
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}

    def start_scheduler(self) -> None:
        self.file.unlink(missing_ok=True)
        self.logs["scheduler"] = self.tmp / "scheduler.log"
        self.procs["scheduler"] = _spawn([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0",
                                          "--no-dashboard", "--scheduler-file", str(self.file)],
                                         self.logs["scheduler"])
        _wait_for("the scheduler file", lambda: self.file.exists() and self.file.stat().st_size > 0, 60)
        assert json.loads(self.file.read_text())["address"].startswith("tcp://127.0.0.1:")

    def start_worker(self, name: str) -> None:
        self.logs[name] = self.tmp / f"{name}.log"
        self.procs[name] = _spawn([*RVHARNESS, "worker", "--scheduler-file", str(self.file), "--slots", "1",
                                   "--name", f"{name}-{os.getpid()}", "--host", "127.0.0.1"], self.logs[name])
        _wait_for(f"worker {name}", lambda: "VM slots, at tcp://127.0.0.1:" in self.logs[name].read_text(), 60)

    def log(self, name: str) -> str:
        return self.logs[name].read_text()

    def stop(self) -> None:
        for name in list(self.procs)[::-1]:
            _stop(self.procs[name])


@pytest.fixture
def cluster(tmp_path: Path):
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.stop()


def _client(cluster: Cluster, out: Path, *extra: str) -> subprocess.Popen:
    return _spawn([*RVHARNESS, "run", *SCENARIOS, *KERNELS, "--scheduler-file", str(cluster.file),
                   "--out", str(out), *extra], out.parent / f"{out.name}.client.log")


def _verdicts(out: Path) -> dict[tuple[str, str], str]:
    return {(e["kernel"], e["scenario"]): e["verdict"] for e in json.loads((out / "summary.json").read_text())}


def _junit_cases(out: Path) -> set[tuple[str, str, str]]:
    xml = JUnitXml.fromfile(str(out / "junit.xml"))
    return {(s.name, c.classname, c.name) for s in xml for c in s}


def _qemu_of(pid: int) -> list[int]:
    """Live QEMU processes whose parent is pid."""
    found = []
    for p, cmd, stat in _processes():
        state, ppid = stat[stat.rindex(")") + 2:].split()[:2]
        if int(ppid) == pid and state != "Z" and "qemu-system" in cmd:
            found.append(p)
    return found


def _alive(pids: list[int]) -> list[int]:
    return [p for p in pids if Path(f"/proc/{p}").exists() and "qemu-system" in
            Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")]


def _boots(text: str) -> list[str]:
    return re.findall(r": boot (.+?) slot \d+$", text, re.M)


def test_worker_killed_while_booting(cluster: Cluster, tmp_path: Path) -> None:
    cluster.start_scheduler()
    cluster.start_worker("w1")
    cluster.start_worker("w2")
    out = tmp_path / "out"
    client = _client(cluster, out)
    try:
        cell = _wait_for("w1 to boot a VM", lambda: (_boots(cluster.log("w1")) or [None])[-1], 300)
        qemus = _wait_for("its QEMU", lambda: _qemu_of(cluster.procs["w1"].pid), 60)
        cluster.procs["w1"].send_signal(signal.SIGKILL)
        cluster.procs["w1"].wait(timeout=10)
        _wait_for("the killed worker's QEMU to die with it", lambda: not _alive(qemus), 10)
        rc = client.wait(timeout=600)
    finally:
        _stop(client)
    client_log = (tmp_path / "out.client.log").read_text()
    assert rc in (0, 1), client_log[-3000:]
    verdicts = _verdicts(out)
    assert len(verdicts) == 6 and set(verdicts.values()) <= {*PASSED, "fail"}, verdicts
    # The revert kernel fails the backtrace scenario, the default passes it.
    assert verdicts[("default", "backtrace-ipi")] in PASSED
    assert verdicts[("revert-f15c21a3de1b", "backtrace-ipi")] == "fail"
    attempts = _boots(cluster.log("w1")) + _boots(cluster.log("w2"))
    assert attempts.count(cell) == 2, (cell, attempts)          # killed once, run once more
    assert all(attempts.count(c) <= 2 for c in attempts)
    assert sorted(set(attempts)) == sorted(f"{s} [{k}]" for k, s in verdicts)
    # Each key built once per cluster: a build task runs again only when the
    # worker holding its only result died, and then finds the kernel in the
    # cache of the worker it lands on (a cache hit, nothing compiled).
    b1 = re.findall(r": build (\S+) \((\w+)\)", cluster.log("w1"))
    b2 = re.findall(r": build (\S+) \((\w+)\)", cluster.log("w2"))
    for k in ("default", "revert-f15c21a3de1b"):
        runs = [c for n, c in b1 + b2 if n == k]
        assert runs.count("compiling") <= 1, (k, b1, b2)
        assert len(runs) == 1 or (len(runs) == 2 and (k, "cached") in b2 and any(n == k for n, _ in b1)), \
            (k, b1, b2)
    assert _qemu_of(cluster.procs["w2"].pid) == [] and not _alive(qemus)
    assert len(_junit_cases(out)) >= 6 and {s for s, _, _ in _junit_cases(out)} == {
        f"{k}/{s}" for k, s in verdicts}
    for (k, s) in verdicts:
        assert (out / k / s / "console.log").stat().st_size > 0


def test_scheduler_killed_then_resume(cluster: Cluster, tmp_path: Path) -> None:
    cluster.start_scheduler()
    cluster.start_worker("w1")
    out = tmp_path / "out"
    client = _client(cluster, out)
    try:
        _wait_for("two cells with a verdict", lambda: len(list((out / "cells").glob("*.json"))) >= 2, 400)
        cluster.procs["scheduler"].send_signal(signal.SIGKILL)
        rc = client.wait(timeout=120)
    finally:
        _stop(client)
    assert rc == 2, (tmp_path / "out.client.log").read_text()[-2000:]
    assert "--resume" in (tmp_path / "out.client.log").read_text()
    qemus = _qemu_of(cluster.procs["w1"].pid)
    cluster.stop()
    _wait_for("no QEMU of the run", lambda: not _alive(qemus), 30)
    before = {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json")}
    assert 2 <= len(before) < 6
    res = rvharness("run", "--resume", str(out), "-j", "2", timeout=600)
    assert res.returncode == 1, res.stdout[-2000:] + res.stderr[-2000:]
    ran = re.findall(r"^(PASS|FAIL|ERROR|SKIP) +(\S+) \[(\S+)\]", res.stdout, re.M)
    assert len(ran) == 6 - len(before), res.stdout            # only the missing cells ran
    assert f"{len(before)} cells have a verdict, {6 - len(before)} to run" in res.stderr
    after = {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json")}
    assert len(after) == 6 and all(after[n] == t for n, t in before.items())
    assert len(_verdicts(out)) == 6
    assert {s for s, _, _ in _junit_cases(out)} == {f"{k}/{s}" for k, s in _verdicts(out)}


def test_three_shards_merge_as_one_run(tmp_path: Path) -> None:
    # The default and the revert kernel over three shards: whole kernels
    # per shard, so one shard has nothing to do.
    whole = tmp_path / "whole"
    res = rvharness("run", *SCENARIOS, *KERNELS, "-j", "2", "--out", str(whole), timeout=600)
    assert res.returncode == 1, res.stderr[-2000:]
    outs = []
    for k in (1, 2, 3):
        o = tmp_path / f"shard{k}"
        env = {**os.environ, "CI_NODE_INDEX": str(k), "CI_NODE_TOTAL": "3"}
        r = rvharness("run", *SCENARIOS, *KERNELS, "--shard", "auto", "--out", str(o), env=env, timeout=600)
        assert r.returncode in (0, 1, 5) or "nothing" in r.stderr, r.stderr[-2000:]
        outs.append(o)
    shard_kernels = [{e["kernel"] for e in json.loads((o / "summary.json").read_text())} for o in outs]
    assert sorted(map(sorted, shard_kernels)) == [[], ["default"], ["revert-f15c21a3de1b"]]
    merged = tmp_path / "merged"
    m = rvharness("merge", *map(str, outs), "--out", str(merged))
    assert m.returncode == 1, m.stdout[-2000:] + m.stderr[-2000:]
    assert _verdicts(merged) == _verdicts(whole)
    assert _junit_cases(merged) == _junit_cases(whole)
    assert [(e["kernel"], e["scenario"]) for e in json.loads((merged / "summary.json").read_text())] == \
           [(e["kernel"], e["scenario"]) for e in json.loads((whole / "summary.json").read_text())]
    for k, s in _verdicts(merged):
        assert (merged / k / s / "console.log").stat().st_size > 0
