"""Every scenario under scenarios/ on each arch's default (reference) kernel:
each passes, or is skipped with its reason. Issue 25: the arm64 half of the
suite was never run whole, and ipi-stop-panic-stuck, a riscv64 expectation,
failed the arm64 reference kernel unseen. -j 2: the scenarios marked
`exclusive` still run alone (docs/ci.md)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import PASSED, ROOT, rvharness

pytestmark = pytest.mark.integration

DEFAULTS = {"riscv64": "kernels/default.yaml", "arm64": "kernels/arm64/default.yaml"}


@pytest.mark.parametrize("arch", sorted(DEFAULTS))
def test_every_scenario_passes_or_skips_on_the_reference_kernel(arch: str, tmp_path: Path) -> None:
    out = tmp_path / arch
    proc = rvharness("run", "scenarios/", "--kernel", DEFAULTS[arch], "-j", "2", "--out", str(out),
                     timeout=1800)
    summary = json.loads((out / "summary.json").read_text())
    verdicts = {r["scenario"]: r["verdict"] for r in summary}
    scenario_files = list((ROOT / "scenarios").rglob("*.yaml"))
    assert len(verdicts) == len(scenario_files), sorted(verdicts)
    bad = {s: v for s, v in verdicts.items() if v not in (*PASSED, "skip")}
    # FLAKY only as the runner makes it: a boot retried, both consoles kept
    assert all("boot retried" in r["reason"] for r in summary if r["verdict"] == "flaky"), summary
    assert not bad and proc.returncode == 0, f"{bad}\n{proc.stdout[-4000:]}{proc.stderr[-2000:]}"
    for r in summary:
        if r["verdict"] == "skip":
            assert r["reason"], r
