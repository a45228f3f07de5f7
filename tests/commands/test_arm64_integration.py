"""arm64 on real QEMU with real kernels built from the Debian source: the
seed's scenarios and the all-but-self lockup scenarios pass on the
pseudo-NMI kernel and fail on both baselines (the seed's revert, and the
same kernel booted with irqchip.gicv3_pseudo_nmi=0), and the generic
scenarios run on arm64 (tests/commands/test_all_scenarios.py runs them all there). One matrix run
and one `run` are shared by all the checks."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from helpers import PASSED, ROOT, qemu_pids_mentioning, rvharness

from harness.core.arch import ARM64
from harness.kernel import kbuild
from harness.kernel.recipe import load_recipe

pytestmark = pytest.mark.integration

ARM64_KERNELS = ("arm64-default", "arm64-revert-pseudo-nmi-backtrace", "arm64-without-pseudo-nmi")
SEED = ("pseudo-nmi-backtrace-stuck-cpu", "pseudo-nmi-kdb-stuck-cpu")
LOCKUP = ("softlockup-all-but-self", "hardlockup-all-but-self")


@pytest.fixture(scope="module")
def arm64_matrix(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, list[dict], Path]:
    out = tmp_path_factory.mktemp("arm64-matrix")
    proc = rvharness("matrix", "--arch", "arm64", "scenarios/arm64", "scenarios/lockup",
                     "scenarios/backtrace-ipi.yaml", "--out", str(out), timeout=1800)
    assert (out / "matrix.json").exists(), proc.stdout[-4000:] + proc.stderr[-3000:]
    return proc, json.loads((out / "matrix.json").read_text()), out


def test_arm64_kernels_build_once_and_share_the_cache() -> None:
    kernels = {n: kbuild.build(load_recipe(ROOT / "kernels" / "arm64" / f"{n}.yaml"))
               for n in ("default", "revert-pseudo-nmi-backtrace", "without-pseudo-nmi")}
    assert kernels["default"].key == kernels["without-pseudo-nmi"].key     # the cmdline is no build input
    assert kernels["default"].key != kernels["revert-pseudo-nmi-backtrace"].key
    for k in kernels.values():
        ARM64.check_image(k.image)
        config = k.config
        assert config is not None and config.get("CONFIG_ARM64_PSEUDO_NMI") == "y"
    assert kernels["without-pseudo-nmi"].cmdline[-1] == "irqchip.gicv3_pseudo_nmi=0"


def test_arm64_matrix_holds(arm64_matrix) -> None:
    proc, cells, out = arm64_matrix
    bad = [c for c in cells if not c["holds"]]
    assert not bad and proc.returncode == 0, json.dumps(bad, indent=1) + proc.stdout[-3000:]
    assert {c["kernel"] for c in cells} == set(ARM64_KERNELS)
    by = {(c["scenario"], c["kernel"]): c["verdict"] for c in cells}
    # Each seed claim passes with pseudo-NMIs and fails on both baselines.
    for s in SEED:
        assert [by[(s, k)] for k in ARM64_KERNELS] == ["pass", "fail", "fail"], s
    # The all-but-self backtraces need the arch's backtrace IPI, not an NMI.
    for s in LOCKUP:
        assert [by[(s, k)] for k in ARM64_KERNELS] == ["pass", "fail", "pass"], s
    # RISC-V-only scenarios are not in arm64's matrix at all.
    assert not any(c["scenario"] == "backtrace-ipi-stuck-cpu" for c in cells)
    assert "holds" in (out / "matrix.md").read_text()


def test_arm64_stuck_cpu_evidence(arm64_matrix) -> None:
    """What the seed scenario saw, artifact by artifact: the pseudo-NMI
    backtrace of the stuck CPU, the QMP probe's arm64 registers, symbolised,
    and the console log the failing baseline runs left."""
    _, _, out = arm64_matrix
    run = out / "arm64-default" / "pseudo-nmi-backtrace-stuck-cpu"
    argv = (run / "qemu.argv").read_text().split("\n")
    assert argv[0] == "qemu-system-aarch64" and "virt,gic-version=3" in argv and "max" in argv
    append = argv[argv.index("-append") + 1]
    assert "console=ttyAMA0" in append and "irqchip.gicv3_pseudo_nmi=1" in append
    console = (run / "console.log").read_text()
    assert "GICv3: Pseudo-NMIs enabled" in console
    assert "NMI backtrace for cpu 3" in console and "pc : lkdtm_HARDLOCKUP" in console
    obs = json.loads((run / "observations.json").read_text())
    samples = [s for rnd in obs["vcpu_probes"]["stuck"]["samples"] for s in rnd if s["cpu"] == 3]
    assert samples and all(s["location"] == "lkdtm" for s in samples), samples
    assert all(s["pc_symbol"] or s["ra_symbol"] for s in samples)
    verdicts = json.loads((run / "verdicts.json").read_text())
    assert verdicts["verdict"] in PASSED
    off = out / "arm64-without-pseudo-nmi" / "pseudo-nmi-backtrace-stuck-cpu" / "console.log"
    assert "Pseudo-NMIs enabled" not in off.read_text()
    assert not qemu_pids_mentioning(str(out))


def test_recipes_sharing_an_image_keep_their_own_command_line_under_j(tmp_path: Path) -> None:
    """without-pseudo-nmi is the default's Image (one cache key, so one Dask
    build task) booted with irqchip.gicv3_pseudo_nmi=0. Under -j its cells
    once ran with the default's name and command line, and the matrix
    "held" with the baseline passing as the default."""
    out = tmp_path / "out"
    proc = rvharness("run", "-j", "2", "scenarios/arm64/pseudo-nmi-backtrace-stuck-cpu.yaml",
                     "--kernel", "kernels/arm64/default.yaml", "--kernel", "kernels/arm64/without-pseudo-nmi.yaml",
                     "--out", str(out), timeout=900)
    summary = json.loads((out / "summary.json").read_text())
    verdicts = {e["kernel"]: e["verdict"] for e in summary}
    assert verdicts == {"arm64-default": "pass", "arm64-without-pseudo-nmi": "fail"}, proc.stdout[-3000:]
    argv = (out / "arm64-without-pseudo-nmi" / "pseudo-nmi-backtrace-stuck-cpu" / "qemu.argv").read_text()
    assert "irqchip.gicv3_pseudo_nmi=0" in argv
    assert "irqchip.gicv3_pseudo_nmi=0" not in \
        (out / "arm64-default" / "pseudo-nmi-backtrace-stuck-cpu" / "qemu.argv").read_text()
