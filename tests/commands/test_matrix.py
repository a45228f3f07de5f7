"""The detection matrix on real kernels: every seed scenario passes on the
patched kernel and fails on the kernel that reverts its commit."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import PASSED, ROOT, rvharness

from harness.commands import matrix
from harness.scenario import parse as scenario


def test_wanted_cells() -> None:
    scn = scenario.load(ROOT / "scenarios" / "backtrace-ipi.yaml")
    assert matrix.wanted(scn, "default")[0] == "pass"
    assert matrix.wanted(scn, "revert-f15c21a3de1b")[0] == "fail"
    assert matrix.wanted(scn, "revert-983f12149942")[0] == "pass"
    assert matrix.wanted(scn, "without-csd-lock-diagnostics")[0] == "pass"
    csd = scenario.load(ROOT / "scenarios" / "smp-call-csd-lock.yaml")
    assert matrix.wanted(csd, "without-csd-lock-diagnostics")[0] == "fail"
    assert matrix.wanted(csd, "revert-f15c21a3de1b")[0] == "pass"


def test_every_seed_commit_has_scenarios() -> None:
    covered = {c for f in scenario.discover([ROOT / "scenarios"]) for c in scenario.load(f).covers}
    assert {"f15c21a3de1b", "983f12149942", "3908ba2e0b24", "kernel/smp.c"} <= covered
    for commit in ("f15c21a3de1b", "983f12149942", "3908ba2e0b24"):
        assert (ROOT / "kernels" / f"revert-{commit}.yaml").exists()
    # kernel/smp.c is a file, not a commit: its baseline takes out the
    # CSD-lock timeout diagnostics the csd scenario relies on.
    assert (ROOT / "kernels" / "without-csd-lock-diagnostics.yaml").exists()


@pytest.mark.integration
def test_detection_matrix_holds(tmp_path: Path) -> None:
    out = tmp_path / "matrix"
    # riscv64's kernels; arm64's matrix is tests/commands/test_arm64_integration.py's
    proc = rvharness("matrix", "--arch", "riscv64", "--out", str(out), timeout=3600)
    cells = json.loads((out / "matrix.json").read_text())
    bad = [c for c in cells if not c["holds"]]
    assert proc.returncode in (0, 1) and not bad, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert proc.returncode == (0 if all(c["holds"] for c in cells) else 1)
    default_hotplug = next(c for c in cells if c["scenario"] == "hotplug-online-latency"
                           and c["kernel"] == "default")
    assert default_hotplug["verdict"] in PASSED
    kernels = {c["kernel"] for c in cells}
    assert kernels == {"default", "revert-f15c21a3de1b", "revert-983f12149942", "revert-3908ba2e0b24",
                       "without-csd-lock-diagnostics"}
    # A scenario that passes without the change it exists for is useless:
    # each baseline kernel must fail at least one scenario.
    for k in kernels - {"default"}:
        assert any(c["kernel"] == k and c["verdict"] == "fail" for c in cells), k
    assert (out / "matrix.md").read_text().startswith("# Detection matrix")
    # Issue 13: the whole matrix's JUnit stays small enough for CI servers,
    # and its report.html shows the matrix with the cells that do not hold.
    assert (out / "junit.xml").stat().st_size < 200_000
    assert "<h2>Detection matrix</h2>" in (out / "report.html").read_text()
