"""FLAKY without a VM: a scenario that passed only on a retry is neither a
pass nor a kernel failure. The verdict (scenario_verdict.judge), the exit
code (--flaky), the terminal line and summary, JUnit's <rerunFailure>, and
the retried attempt counted as a failed sample where bisect and review
count (repeats._account). The retry itself boots for real in
tests/run/test_spine.py (bring-up) and tests/guest/test_faults.py (QEMU
killed once, then FLAKY)."""
from __future__ import annotations

import io
from pathlib import Path

import xmlschema
from junitparser import Failure, JUnitXml

from harness.commands.run import exit_code
from harness.core.errors import EXIT_FAIL, EXIT_OK
from harness.expect.checks import FAIL, FLAKY, PASS, CheckResult
from harness.expect.observations import Observations
from harness.expect.result import ScenarioResult
from harness.outputs import junit, lines, results
from harness.run import repeats
from harness.run.scenario_verdict import judge
from harness.scenario.parse import load

ROOT = Path(__file__).resolve().parents[2]
XSD = ROOT / "tests/data/junit-10.xsd"
BRINGUP = {"attempt": 1, "cpus": 3, "console_log": "console-boot1.log",
           "reason": "CPU1: failed to come online"}


def _result(tmp_path: Path, retries: list[dict], infra: int = 0) -> ScenarioResult:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "s.yaml").write_text("name: s\nsteps:\n  - shell: 'true'\n")
    scn = load(tmp_path / "s.yaml")
    res = ScenarioResult(scn, "default", PASS, [CheckResult("x seen", PASS, "x", "x")], 3.0, tmp_path)
    (tmp_path / "console.log").write_text("second attempt\n")
    (tmp_path / "console-boot1.log").write_text("CPU1: failed to come online\n")
    judge(res, scn, Observations(boot_retries=retries), [], [], model_only=False)
    res.infra_retries = infra
    return res


def test_a_pass_on_the_retry_is_flaky_and_exits_0_unless_asked(tmp_path: Path) -> None:
    res = _result(tmp_path, [BRINGUP])
    assert res.verdict == FLAKY and res.retried_logs == ["console-boot1.log"]
    assert "boot retried: CPU1: failed to come online" in res.reason
    assert exit_code([res]) == EXIT_OK and exit_code([res], flaky_fails=True) == EXIT_FAIL
    clean = _result(tmp_path / "clean", [])
    assert clean.verdict == PASS and exit_code([clean], flaky_fails=True) == EXIT_OK
    out = io.StringIO()
    lines.print_result(res, out)
    text = out.getvalue()
    assert text.startswith("FLAKY s [default]") and "retried attempt's console log: " in text
    assert "console-boot1.log" in text
    summary = lines.summary_line([res, clean])
    assert summary.startswith("1 passed, 0 failed, 0 skipped, 0 errors; ") and "; 1 flaky (passed only on a retry)" in summary


def test_junit_marks_flaky_with_a_rerun_failure(tmp_path: Path) -> None:
    res = _result(tmp_path, [BRINGUP])
    results.write_summary([res], tmp_path / "summary.json")
    path = tmp_path / "junit.xml"
    path.write_text(junit.render(results.load(tmp_path)))
    xmlschema.XMLSchema(str(XSD)).validate(str(path))
    cases = {c.name: c for s in JUnitXml.fromfile(str(path)) for c in s}
    retry = cases["passed on a retry"]
    assert "<rerunFailure" in path.read_text() and "console-boot1.log" in path.read_text()
    assert not any(isinstance(r, Failure) for c in cases.values() for r in c.result), retry


def test_every_attempt_is_a_sample_for_bisect_and_review(tmp_path: Path) -> None:
    """The boot that missed bring-up counts as a failure of the bring-up
    check in that run: a kernel failing bring-up 30% of the time is seen
    in the counts, not erased by the retry. A QEMU killed from outside
    (infrastructure) adds no sample."""
    run = repeats.SuiteRun(1)
    res = _result(tmp_path, [BRINGUP])
    repeats._account(run, res.scenario, tmp_path, res)
    assert run.checks["s: all CPUs came online at boot"] == FAIL and run.checks["s: x seen"] == PASS
    counts = repeats.Counts([run])
    assert counts.per_check()["s: all CPUs came online at boot"] == (0, 1)
    killed = repeats.SuiteRun(2)
    res2 = _result(tmp_path / "k", [{"attempt": 1, "console_log": "console-rerun1.log",
                                     "reason": "QEMU died of signal 9 (SIGKILL), not sent by the harness"}], infra=1)
    repeats._account(killed, res2.scenario, tmp_path, res2)
    # Its retried run passed: the implicit check is stated as passed, with no failed sample.
    assert killed.checks["s: all CPUs came online at boot"] == PASS and killed.judged_for("s")


def test_a_bringup_miss_after_the_guests_own_reboot_is_found() -> None:
    """runner._reboot_bringup_miss on real logs: a scenario's reboot that
    came back with every CPU says nothing; the same reboot followed by the
    boot that missed CPU 1 (bench/bringup's, spliced after the reboot line:
    the CI run's own log was not kept) is the miss the runner retries; a
    first boot's miss is not (runner._booted retries that one)."""
    from harness.run.runner import _reboot_bringup_miss
    data = ROOT / "tests/data/bringup"
    reboot = (data / "ipi-stop-reboot-default.log").read_text()
    missed = (data / "boot-cpu1-missed.log").read_text()
    assert _reboot_bringup_miss(reboot) is None
    assert _reboot_bringup_miss(missed) is None
    cut = reboot.index("reboot: Restarting system") + len("reboot: Restarting system\n")
    assert _reboot_bringup_miss(reboot[:cut] + missed) == "'CPU1: failed to come online'"
