"""`run --repeats N` without a VM (harness/run/attempts.py): the verdict
over the attempts, what is a sample and what is not, each check's counts
and interval, the terminal's lines, repeats.json and summary.json, the
exit code and JUnit's flaky marking. The attempts are ScenarioResults as
runner.run_scenario returns them, each in its own run-<i>/ directory; the
one booting test of --repeats is in tests/run/test_spine.py."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import xmlschema
from junitparser import Failure, JUnitXml

from harness.commands.run import exit_code
from harness.core.errors import EXIT_ERROR, EXIT_FAIL, EXIT_NOTHING_RAN, EXIT_OK
from harness.expect.checks import ERROR, FAIL, FLAKY, MODEL, PASS, SKIP, CheckResult
from harness.expect.observations import Observations
from harness.expect.result import ScenarioResult
from harness.outputs import html, junit, lines, results
from harness.run import attempts, repeats
from harness.run.parallel import plan, submit
from harness.run.scenario_verdict import judge
from harness.scenario.parse import load
from harness.scenario.types import Scenario

ROOT = Path(__file__).resolve().parents[2]
XSD = ROOT / "tests/data/junit-10.xsd"
SEEN = "x seen"
CLAIM = "model: every IPI counted"


@pytest.fixture
def scn(tmp_path: Path) -> Scenario:
    (tmp_path / "s.yaml").write_text("name: s\nsteps:\n  - shell: 'true'\n")
    return load(tmp_path / "s.yaml")


def _attempt(scn: Scenario, art: Path, i: int, seen: str = PASS, claim: str = PASS,
             verdict: str | None = None, reason: str = "", retries: list[dict] | None = None) -> ScenarioResult:
    """Attempt i as the runner leaves it: its checks, its verdict (judged
    from the checks unless given) and its console log in art/run-<i>/."""
    where = attempts.attempt_dir(art, i)
    where.mkdir(parents=True)
    (where / "console.log").write_text(f"attempt {i}\n")
    checks = [CheckResult(SEEN, seen, "x", "x" if seen == PASS else "nothing"),
              CheckResult(CLAIM, claim, "1", "1" if claim == PASS else "0", origin=MODEL)]
    res = ScenarioResult(scn, "default", PASS, checks, 2.0, where)
    if verdict is None:
        judge(res, scn, Observations(boot_retries=list(retries or [])), [], [], model_only=False)
        if retries:
            (where / retries[0]["console_log"]).write_text("first boot\n")
    else:
        res.verdict, res.reason = verdict, reason
    return res


def _combine(scn: Scenario, art: Path, specs: list[dict]) -> attempts.RepeatedResult:
    return attempts.combine(scn, "default", art, [_attempt(scn, art, i, **s) for i, s in enumerate(specs, 1)])


@pytest.mark.parametrize("samples,verdicts,want", [
    ([PASS, PASS, PASS], [PASS] * 3, PASS),
    ([FAIL, FAIL], [FAIL, FAIL], FAIL),
    ([PASS, FAIL, PASS], [PASS, FAIL, PASS], FLAKY),
    ([FAIL, None, FAIL], [FAIL, ERROR, FAIL], FAIL),        # infrastructure is no sample
    ([None, PASS], [ERROR, PASS], PASS),
    ([None, None], [SKIP, SKIP], SKIP),
    ([None, None], [SKIP, ERROR], ERROR),
    ([None], [ERROR], ERROR),
])
def test_the_verdict_over_the_attempts(samples: list, verdicts: list, want: str) -> None:
    assert attempts.verdict_over(samples, verdicts) == want


def test_mixed_attempts_are_flaky_with_counts_and_interval(scn: Scenario, tmp_path: Path) -> None:
    art = tmp_path / "out" / "default" / "s"
    res = _combine(scn, art, [{}, {"seen": FAIL}, {}, {"seen": FAIL, "claim": FAIL}, {}])
    assert res.verdict == FLAKY and res.artifacts == art
    doc = json.loads((art / attempts.REPEATS_JSON).read_text())
    assert (doc["runs"], doc["judged"], doc["failed"], doc["primary"]) == (5, 5, 2, "run-2")
    seen = next(c for c in doc["checks"] if c["name"] == SEEN)
    assert (seen["failed"], seen["runs"], seen["first_failed_run"]) == (2, 5, 2)
    assert seen["ci95"] == pytest.approx([0.0527, 0.8534], abs=1e-4) and seen["rate"] == 0.4
    claim = next(c for c in doc["checks"] if c["name"] == CLAIM)
    assert (claim["failed"], claim["runs"]) == (1, 5) and "rate_seen_95" not in claim
    # every attempt keeps its own log, listed in the result
    assert [a["console_logs"] for a in doc["attempts"]] == [[f"run-{i}/console.log"] for i in range(1, 6)]
    assert [(art / a["console_logs"][0]).read_text() for a in doc["attempts"]] == [f"attempt {i}\n" for i in range(1, 6)]
    assert [a["sample"] for a in doc["attempts"]] == [PASS, FAIL, PASS, FAIL, PASS]
    merged = {c.name: c for c in res.checks}
    assert merged[SEEN].verdict == FLAKY and merged[SEEN].observed == "nothing"
    assert merged[SEEN].message.startswith("x seen: failed 2/5 (40%, 95% CI 5–85%)")
    assert res.console_log == art / "run-2" / "console.log"
    verdicts = json.loads((art / "verdicts.json").read_text())
    assert verdicts["verdict"] == FLAKY and verdicts["summary"] == "2/5 runs failed"


def test_the_terminal_lines_and_the_exit_code(scn: Scenario, tmp_path: Path) -> None:
    flaky = _combine(scn, tmp_path / "a", [{}, {"seen": FAIL}, {}, {"seen": FAIL}, {}])
    clean = _combine(scn, tmp_path / "b", [{}, {}, {}, {}, {}])
    out = io.StringIO()
    lines.print_result(flaky, out)
    text = out.getvalue().splitlines()
    assert text[0].startswith("FLAKY s [default] 2/5 runs failed 10.0s")
    assert "      x seen: failed 2/5 (40%, 95% CI 5–85%)" in text
    # The model claim and the five implicit checks (repeats.implicit_passes), stated in every attempt.
    assert ("      6 other checks: 0/5 failed: a failure rate of 45% or more would have shown "
            "with 95% probability") in text
    assert sum("console log: " in t for t in text) == 5
    out = io.StringIO()
    lines.print_result(clean, out)
    assert out.getvalue().splitlines() == [
        "PASS  s [default] 0/5 runs failed 10.0s",
        "      every check (7): 0/5 failed: a failure rate of 45% or more would have shown with 95% probability"]
    summary = lines.summary_line([flaky, clean])
    assert summary.startswith("1 passed, 0 failed, 0 skipped, 0 errors; ") and "; 1 flaky (" in summary
    assert exit_code([flaky, clean]) == EXIT_OK and exit_code([flaky, clean], flaky_fails=True) == EXIT_FAIL
    assert exit_code([clean], flaky_fails=True) == EXIT_OK


def test_a_kernel_that_crashes_is_a_failed_sample_and_infrastructure_is_none(scn: Scenario, tmp_path: Path) -> None:
    """A panic (FAIL with a failed check, the expectations not evaluated:
    ERROR) is what the kernel did; a QEMU that would not start (ERROR, no
    failed check) says nothing about it."""
    art = tmp_path / "out"
    crashed = _attempt(scn, art, 1, seen=ERROR, verdict=FAIL, reason="kernel crashed: Kernel panic")
    crashed.checks.append(CheckResult("kernel did not crash", FAIL, "no panic or oops", "Kernel panic"))
    infra = _attempt(scn, art, 2, verdict=ERROR, reason="QEMU exited before the guest booted")
    res = attempts.combine(scn, "default", art, [crashed, infra, _attempt(scn, art, 3, seen=FAIL)])
    assert res.verdict == FAIL and res.reason == "run 1: kernel crashed: Kernel panic"
    doc = res.repeats
    assert (doc["judged"], doc["not_judged"], doc["failed"]) == (2, 1, 2)
    assert [a["sample"] for a in doc["attempts"]] == [FAIL, "not judged", FAIL]
    assert lines.scenario_line(res).startswith(
        "FAIL  s [default] 2/2 runs failed, 1 of 3 not judged (skipped or infrastructure)")
    assert exit_code([res]) == EXIT_FAIL


def test_nothing_judged_is_an_error_or_a_skip(scn: Scenario, tmp_path: Path) -> None:
    art = tmp_path / "e"
    err = attempts.combine(scn, "default", art, [_attempt(scn, art, i, verdict=ERROR, reason="QMP lost")
                                                 for i in (1, 2)])
    assert err.verdict == ERROR and err.reason == "QMP lost" and exit_code([err]) == EXIT_ERROR
    art = tmp_path / "s"
    skip = attempts.combine(scn, "default", art, [_attempt(scn, art, i, verdict=SKIP, reason="kernel lacks KGDB")
                                                  for i in (1, 2)])
    assert skip.verdict == SKIP and exit_code([skip]) == EXIT_NOTHING_RAN


def test_a_boot_retried_for_bring_up_is_a_failed_sample_of_it(scn: Scenario, tmp_path: Path) -> None:
    """The runner's own retry passes the attempt as FLAKY; over repeats
    that boot is a failure of "all CPUs came online at boot", and both of
    the attempt's console logs are listed."""
    bringup = {"attempt": 1, "cpus": 3, "console_log": "console-boot1.log", "reason": "CPU1: failed to come online"}
    art = tmp_path / "out"
    res = _combine(scn, art, [{}, {"retries": [bringup]}, {}])
    assert res.verdict == FLAKY
    counts = {c["name"]: c for c in res.repeats["checks"]}
    assert (counts[attempts.BRINGUP_CHECK]["failed"], counts[attempts.BRINGUP_CHECK]["runs"]) == (1, 3)
    assert res.repeats["attempts"][1]["console_logs"] == ["run-2/console.log", "run-2/console-boot1.log"]


def test_summary_json_and_junit_carry_the_counts(scn: Scenario, tmp_path: Path) -> None:
    out = tmp_path / "out"
    flaky = _combine(scn, out / "default" / "s", [{}, {"seen": FAIL}, {"claim": FAIL}])
    results.write_summary([flaky], out / "summary.json")
    saved = results.load(out)
    assert saved[0].repeats["failed"] == 2 and saved[0].console_log == out / "default/s/run-2/console.log"
    out_text = io.StringIO()
    lines.print_result(saved[0], out_text)          # `rvharness show` reads it back the same
    assert out_text.getvalue().splitlines()[0].startswith("FLAKY s [default] 2/3 runs failed")
    path = tmp_path / "junit.xml"
    path.write_text(junit.render(saved))
    xmlschema.XMLSchema(str(XSD)).validate(str(path))
    cases = {c.name: c for s in JUnitXml.fromfile(str(path)) for c in s}
    assert not any(isinstance(r, Failure) for c in cases.values() for r in c.result)
    text = path.read_text()
    assert text.count("<rerunFailure") == 3        # the check, the model's claims, the attempts
    assert "2/3 runs failed: x seen: failed 1/3 (33%, 95% CI 1–91%)" in text
    assert "run-3/console.log" in text
    report = html.write(out).read_text()          # every run's log linked, the counts shown
    assert "default/s/run-3/console.log" in report and "2/3 runs failed" in report


def test_a_check_failing_in_every_run_fails_in_junit_with_its_counts(scn: Scenario, tmp_path: Path) -> None:
    out = tmp_path / "out"
    failed = _combine(scn, out / "default" / "s", [{"seen": FAIL}, {"seen": FAIL}])
    assert failed.verdict == FAIL and {c.name: c.verdict for c in failed.checks}[SEEN] == FAIL
    results.write_summary([failed], out / "summary.json")
    text = junit.render(results.load(out))
    assert "x seen: failed 2/2 (100%, 95% CI 16–100%); first in run 1: expected x; observed nothing" in text


def test_a_check_named_only_when_it_fails_counts_in_every_judged_run(scn: Scenario, tmp_path: Path) -> None:
    """"kernel did not crash" appears only in the run that crashed: it
    failed 1 of 3, not 1 of 1. A step's own check (named only when it
    fails) is not judged in a run that crashed before reaching it."""
    art = tmp_path / "out"
    crashed = _attempt(scn, art, 1, seen=ERROR, verdict=FAIL, reason="kernel crashed")
    crashed.checks.append(CheckResult("kernel did not crash", FAIL, "no panic or oops", "Kernel panic"))
    stepped = _attempt(scn, art, 2, verdict=FAIL, reason="step late")
    stepped.checks.append(CheckResult("step late", FAIL, "exit 0", "exit 1", "late"))
    res = attempts.combine(scn, "default", art, [crashed, stepped, _attempt(scn, art, 3)])
    counts = {c["name"]: (c["failed"], c["runs"]) for c in res.repeats["checks"]}
    assert counts["kernel did not crash"] == (1, 3)
    assert counts["step late"] == (1, 2)            # run 1 never got there; run 3 passed it
    assert counts[SEEN] == (1, 3)                   # not evaluated after the crash: not shown to hold
    assert res.verdict == FLAKY and res.repeats["primary"] == "run-1"


def test_with_j_a_scenarios_runs_are_cells_side_by_side_and_one_result(scn: Scenario, tmp_path: Path) -> None:
    """-j: each run is a plan cell (run-<i>/ its directory), a scenario's
    runs next to each other; when all are in they become one result under
    the first run's index, and the plan reads back with its runs."""
    other = Scenario(**{**scn.__dict__, "name": "t"})
    cells = plan.cells([scn, other], [("default", "riscv64")], False, repeats=3)
    assert [(c.index, c.scenario, c.attempt) for c in cells] == [
        (0, "s", 1), (1, "s", 2), (2, "s", 3), (3, "t", 1), (4, "t", 2), (5, "t", 3)]
    assert [c.attempt for c in plan.cells([scn], [("default", "riscv64")], False)] == [0]
    assert submit.art_dir(tmp_path, cells[1]) == tmp_path / "default" / "s" / "run-2"
    assert [c.index for c in submit._group(cells, 0)] == [0, 1, 2] and [c.index for c in submit._group(cells, 3)] == [3, 4, 5]
    plan.write(tmp_path, "run", [], cells, None)
    assert plan.plan_cells(plan.read(tmp_path)) == cells
    art = tmp_path / "default" / "s"
    got = {c.index: _attempt(scn, art, c.attempt, seen=FAIL if c.attempt == 2 else PASS) for c in cells[:3]}
    submit._combine(cells[:3], {"s": scn, "t": other}, tmp_path, got)
    assert list(got) == [0] and got[0].verdict == FLAKY and got[0].repeats["failed"] == 1


def test_an_infrastructure_errors_own_check_is_no_check_of_the_kernel(scn: Scenario, tmp_path: Path) -> None:
    """A run whose only trouble was the harness (the model raised: ERROR,
    no failed check) is no sample, and its error check is not listed."""
    art = tmp_path / "out"
    broken = _attempt(scn, art, 2, verdict=ERROR, reason="model error")
    broken.checks = [CheckResult("model: predictions", ERROR, "the model runs", "model error: boom", origin=MODEL)]
    res = attempts.combine(scn, "default", art, [_attempt(scn, art, 1), broken, _attempt(scn, art, 3)])
    assert res.verdict == PASS and (res.repeats["judged"], res.repeats["failed"]) == (2, 0)
    assert [c.name for c in res.checks] == [SEEN, CLAIM, *repeats.IMPLICIT]
    assert {(c["failed"], c["runs"]) for c in res.repeats["checks"]} == {(0, 2)}
