"""The reference model is an oracle independent of the kernel under test:
it predicts the kernel the recipe declares. Fed what the f15c21a3de1b
revert printed (a golden log and its /proc/interrupts, both captured from
this project's runs), the runner's model comparison must disagree with it.
Before the model was made independent, it read the kernel's IPI rows and
agreed with 33 of 34 claims."""
from __future__ import annotations

from pathlib import Path

import pytest
from golden_files import split_golden

from harness.core.arch import RISCV64
from harness.expect.checks import FAIL, MODEL, NOT_COMPARED, PASS
from harness.expect.observations import Observations, StepRecord
from harness.guest.machine import MachineSpec
from harness.kernel.kbuild import BuiltKernel
from harness.kernel.recipe import load_recipe
from harness.model import Features
from harness.model.features import resolve_without
from harness.parsers import interrupts
from harness.run import runner
from harness.scenario import parse as scenario_mod
from harness.scenario.parse import as_steps

DATA = Path(__file__).parents[1] / "data"
ROOT = Path(__file__).resolve().parents[2]


def _scenario(tmp_path: Path) -> scenario_mod.Scenario:
    path = tmp_path / "bt.yaml"
    path.write_text("name: bt\nsteps:\n  - name: trigger\n    sysrq: {key: l, cpu: 1}\nexpect:\n  - model: true\n")
    return scenario_mod.load(path)


def _observed_revert() -> Observations:
    """What the f15c21a3de1b revert showed: its IPI rows at boot and its
    console for sysrq-l from CPU 1."""
    _, raw = split_golden(DATA / "console/sysrq-l-reverted-backtrace-from-cpu1.log")
    text = raw.decode("utf-8", errors="replace")
    snap = interrupts.parse((DATA / "interrupts/revert-f15c21a3de1b-4cpus.txt").read_text())
    obs = Observations(console=text, cpus=4, boot_ipi_rows=snap.ipi_names())
    obs.steps["trigger"] = StepRecord("trigger", "sysrq", 0, len(text), 0.4, [0, 1, 2, 3], status=0)
    return obs


def _claims(tmp_path: Path, recipe: str) -> list:
    scn = _scenario(tmp_path)
    r = load_recipe(ROOT / "kernels" / f"{recipe}.yaml")
    kernel = BuiltKernel("golden", tmp_path, r.name, RISCV64, r.model_without)
    spec = MachineSpec(RISCV64, tmp_path / "Image", tmp_path / "initrd", cpus=4)
    checks, _lines = runner._model(scn, kernel, None, spec, _observed_revert(), tmp_path)
    assert all(c.origin == MODEL for c in checks)
    return checks


def test_model_disagrees_with_a_kernel_that_lost_the_backtrace_ipi(tmp_path: Path) -> None:
    # The baseline recipe's name and its patch's name say "revert": neither
    # may change what the model expects.
    checks = _claims(tmp_path, "revert-f15c21a3de1b")
    failed = {c.name: c.observed for c in checks if c.verdict == FAIL}
    assert "model: boot:ipi_rows" in failed
    assert "CPU backtrace interrupts" in failed["model: boot:ipi_rows"]
    assert failed["model: trigger:backtrace:mechanism"].startswith('model: "ipi", kernel: "fallback"')
    passed = [c for c in checks if c.verdict == PASS]
    assert len(failed) >= 3 and len(passed) < len(checks) - 2, (failed, len(passed))


def test_a_recipe_declaring_the_commit_absent_describes_that_kernel(tmp_path: Path) -> None:
    recipe = tmp_path / "older.yaml"
    recipe.write_text("description: an older kernel, before the backtrace IPI\n"
                      "source: {debian: linux-source-6.12}\nmodel: {without: [f15c21a3de1b]}\n")
    r = load_recipe(recipe)
    assert r.model_without == ("f15c21a3de1b",)
    kernel = BuiltKernel("golden", tmp_path, r.name, RISCV64, r.model_without)
    spec = MachineSpec(RISCV64, tmp_path / "Image", tmp_path / "initrd", cpus=4)
    checks, _lines = runner._model(_scenario(tmp_path), kernel, None, spec, _observed_revert(), tmp_path)
    bad = [(c.name, c.observed) for c in checks if c.verdict == FAIL]
    assert not bad, bad
    assert sum(c.verdict == PASS for c in checks) >= 10


def test_recipe_model_without_is_validated(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("source: {debian: linux-source-6.12}\nmodel: {without: [deadbeef00]}\n")
    with pytest.raises(ValueError, match=r"bad.yaml:2.*without.*unknown commit 'deadbeef00'"):
        load_recipe(bad)
    assert resolve_without(["3908ba2"]) == ["3908ba2e0b24"]


def test_features_never_come_from_kernel_rows() -> None:
    assert not hasattr(Features, "from_kernel")
    f = Features.reference(None)
    assert f.backtrace_ipi and f.kgdb_roundup_ipi and f.sbi_ipi_early is True


def test_may_stall_is_not_compared(tmp_path: Path) -> None:
    from harness.expect import crosscheck
    from harness.model import predict
    steps = as_steps([{"hotplug": {"cpu": 1, "online": False}}, {"name": "on", "hotplug": {"cpu": 1, "online": True}}], 4)
    run = predict(steps, Features.reference(None, without=["3908ba2e0b24"]), 4)
    obs = Observations(console="", cpus=4)
    for s in steps:
        obs.steps[s.name] = StepRecord(s.name, "hotplug", 0, 0, 0.1, [0, 1, 2, 3], status=0,
                                       detail={"latency_ms": 5000})
    checks = crosscheck.crosscheck(run, obs)
    cls = [c for c in checks if c.name == "model: on:hotplug:latency_class"]
    assert cls and cls[0].verdict == NOT_COMPARED and "may-stall" in cls[0].observed
