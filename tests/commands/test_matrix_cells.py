"""Matrix cells as pure functions of a run's checks: also_fails_without
holds only when exactly the named checks fail; the model's column must
agree with the default kernel and disagree with a covered baseline."""
from __future__ import annotations

from pathlib import Path

from harness.commands import matrix
from harness.expect.checks import EXPECTATION, FAIL, MODEL, PASS, CheckResult
from harness.expect.result import ScenarioResult
from harness.scenario import parse as scenario

ROOT = Path(__file__).resolve().parents[2]


def _result(kernel: str, failing: list[str], model_fails: bool = False) -> ScenarioResult:
    scn = scenario.load(ROOT / "scenarios/backtrace-ipi.yaml")
    checks = [CheckResult(n, FAIL, "", "", origin=EXPECTATION) for n in failing]
    checks.append(CheckResult("model: x", FAIL if model_fails else PASS, "", "", origin=MODEL))
    verdict = FAIL if failing or model_fails else PASS
    return ScenarioResult(scn, kernel, verdict, checks)


def test_also_fails_without_needs_exactly_the_named_checks() -> None:
    named = "all CPUs came online at boot"
    k = "revert-3908ba2e0b24"
    assert matrix.cells([_result(k, [])])[0].holds
    assert matrix.cells([_result(k, [named])])[0].holds
    # Before: any verdict held on this cell.
    assert not matrix.cells([_result(k, ["backtrace-2"])])[0].holds
    assert not matrix.cells([_result(k, [named, "backtrace-2"])])[0].holds


def test_the_model_must_disagree_with_the_covered_baseline() -> None:
    assert matrix.cells([_result("default", [])])[0].holds
    assert not matrix.cells([_result("default", [], model_fails=True)])[0].holds
    assert matrix.cells([_result("revert-f15c21a3de1b", ["c"], model_fails=True)])[0].holds
    assert not matrix.cells([_result("revert-f15c21a3de1b", ["c"], model_fails=False)])[0].holds


def test_old_list_form_is_refused(tmp_path: Path) -> None:
    import pytest

    from harness.core.errors import InputError
    f = tmp_path / "s.yaml"
    f.write_text("name: s\nalso_fails_without: [3908ba2e0b24]\nsteps:\n  - shell: 'true'\n")
    with pytest.raises(InputError, match="also_fails_without"):
        scenario.load(f)
    f.write_text("name: s\nalso_fails_without: {3908ba2e0b24: {checks: [nope], why: x}}\nsteps:\n  - shell: 'true'\n")
    with pytest.raises(InputError, match="no check named 'nope'"):
        scenario.load(f)


def test_a_baseline_that_only_the_model_disagrees_with_passes_its_expectations() -> None:
    # revert-983f12149942 lacks the KGDB row the model expects everywhere: the
    # model fails, the backtrace scenario's own expectations pass; the cell holds.
    cell = matrix.cells([_result("revert-983f12149942", [], model_fails=True)])[0]
    assert cell.verdict == PASS and cell.model == FAIL and cell.holds
