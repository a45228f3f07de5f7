"""Two judgements that a passing kernel never exercises, fed console logs this
project captured from its own runs (tests/data/): the scenario-wide "no
unexpected kernel report" check (runner._unexpected_reports) and the model's
NEVER console lines (crosscheck). Each must pass on the clean log and fail on
the one that holds what it guards against; before these tests, no test had
either of them fail."""
from __future__ import annotations

from pathlib import Path

from golden_files import split_golden

from harness.expect import crosscheck
from harness.expect.checks import FAIL, PASS
from harness.expect.observations import Observations, StepRecord
from harness.expect.result import ScenarioResult
from harness.model import Features
from harness.run.scenario_verdict import unexpected_reports as _unexpected_reports
from harness.scenario import parse as scenario

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
UNEXPECTED = "no unexpected kernel report"


def _load(name: str) -> scenario.Scenario:
    return scenario.load(ROOT / "scenarios" / f"{name}.yaml")


def _golden(name: str) -> str:
    return split_golden(DATA / "console" / name)[1].decode("utf-8", errors="replace")


def _judge(scn: scenario.Scenario, console: str, model_only: bool = False,
           predicted: list[str] | None = None) -> ScenarioResult:
    result = ScenarioResult(scn, "default", PASS)
    _unexpected_reports(result, scn, Observations(console=console, cpus=4), predicted or [], model_only)
    return result


# ------------------------------------------------ no unexpected kernel report

WARNING = _golden("lkdtm-warning-riscv64.log")     # LKDTM WARNING on CPU 1, default kernel
CLEAN = _golden("sysrq-l-from-cpu1-idle.log")       # a passing backtrace round, default kernel


def test_a_warning_nobody_expected_fails_a_passing_scenario() -> None:
    res = _judge(_load("ipi-resched"), WARNING)
    assert res.verdict == FAIL
    check = next(c for c in res.checks if c.name == UNEXPECTED)
    assert check.verdict == FAIL and "warning on CPU 1" in check.observed
    assert any(r.startswith("warning on CPU 1: WARNING in lkdtm_WARNING") for r in res.unexpected_reports), \
        res.unexpected_reports


def test_a_clean_log_passes() -> None:
    res = _judge(_load("ipi-resched"), CLEAN)
    assert res.verdict == PASS and not res.unexpected_reports
    assert [(c.name, c.verdict, c.observed) for c in res.checks] == [(UNEXPECTED, PASS, "none")]


def test_a_report_on_the_allow_list_passes_and_says_so() -> None:
    # A real hotplug run: "HART1 isn't stopped; status 3", then "CPU1 may
    # not have stopped", the kernel's own racy check (allowed_reports.py).
    res = _judge(_load("ipi-resched"), _golden("hotplug-online-latency-reverted-3908.log"))
    check = next(c for c in res.checks if c.name == UNEXPECTED)
    assert res.verdict == PASS and check.verdict == PASS, check
    assert check.observed.startswith("cpu-hotplug on CPU 1: CPU may not have stopped (allowed: a race in the "
                                     "kernel's own check"), check.observed
    assert "arch/riscv/kernel/cpu-hotplug.c" in check.observed
    assert res.unexpected_reports == ["cpu-hotplug on CPU 1: CPU may not have stopped"]


def test_a_warning_the_scenario_names_is_not_unexpected(tmp_path: Path) -> None:
    path = tmp_path / "warn.yaml"
    path.write_text("name: warn\nsteps:\n  - shell: 'true'\nexpect:\n  - report: {type: warning}\n")
    res = _judge(scenario.load(path), WARNING)
    assert res.verdict == PASS and not res.unexpected_reports


def test_a_warning_the_model_predicts_is_not_unexpected() -> None:
    res = _judge(_load("ipi-resched"), WARNING, predicted=[r"WARNING: CPU: \d+ PID: \d+ at .*lkdtm"])
    assert res.verdict == PASS and not res.unexpected_reports


def test_model_only_runs_list_the_warning_without_failing() -> None:
    res = _judge(_load("ipi-resched"), WARNING, model_only=True)
    assert res.verdict == PASS and res.unexpected_reports and not res.checks


# ------------------------------------------------ the model's NEVER lines

ALL_STOPPED = (DATA / "ipi-types" / "stop-panic-crash.log").read_text()
ONE_STUCK = (DATA / "ipi-types" / "stop-panic-stuck-crash.log").read_text()


def _never_checks(console: str) -> dict[str, str]:
    scn = _load("ipi-stop-panic")
    run = crosscheck.run_model(scn, Features.reference(None, arch="riscv64"))
    obs = Observations(console=console, cpus=4)
    obs.steps["crash"] = StepRecord("crash", "panic", 0, len(console), 0.0, [0, 1, 2, 3])
    return {c.name: c.verdict for c in crosscheck.crosscheck(run, obs) if ":console:" in c.name}


def test_the_model_never_expects_failed_to_stop_when_every_cpu_can_stop() -> None:
    name = "model: crash:console:smp-stop-failed"
    assert _never_checks(ALL_STOPPED)[name] == PASS
    # The same scenario on a kernel where CPU 3 did not stop (the real log of
    # ipi-stop-panic-stuck, CPU 3 with interrupts off) breaks the claim.
    assert "SMP: failed to stop secondary CPUs" in ONE_STUCK
    assert _never_checks(ONE_STUCK)[name] == FAIL


def test_a_line_the_model_says_a_step_must_print_is_looked_for_in_that_step_only(tmp_path: Path) -> None:
    # Two backtrace rounds; the real log of one round is the first step's
    # output, and the second step printed nothing. Searched from the start of
    # the console (as it was, to the step's end + 4 KiB) the second round
    # passed on the first round's lines.
    path = tmp_path / "twice.yaml"
    path.write_text("name: twice\nmachine: {cpus: 4}\nsteps:\n"
                    "  - {name: a, sysrq: {key: l, cpu: 1}}\n  - {name: b, sysrq: {key: l, cpu: 1}}\n")
    scn = scenario.load(path)
    run = crosscheck.run_model(scn, Features.reference(None, arch="riscv64"))
    console = CLEAN + "\n/ # echo quiet\nquiet\n/ # "
    obs = Observations(console=console, cpus=4)
    obs.steps["a"] = StepRecord("a", "sysrq", 0, len(CLEAN), 0.0, [0, 1, 2, 3])
    obs.steps["b"] = StepRecord("b", "sysrq", len(CLEAN), len(console), 0.0, [0, 1, 2, 3])
    verdicts = {c.name: c.verdict for c in crosscheck.crosscheck(run, obs) if ":console:" in c.name}
    assert verdicts["model: a:console:sysrq-l"] == PASS
    assert verdicts["model: b:console:sysrq-l"] == FAIL, verdicts


def test_a_kernel_that_crashed_fails_model_only_too() -> None:
    # The real console of an oops in a step that does not crash on purpose.
    # --model-only used to pass it: "0/0 model claims" once the crash had
    # ended the run before any claim could be compared.
    from harness.core.errors import GuestCrashed
    from harness.run.endings import Progress, crashed
    from harness.run.scenario_verdict import judge

    text = _golden("lkdtm-bug-riscv64.log")
    scn = _load("ipi-resched")
    for model_only in (False, True):
        res = ScenarioResult(scn, "default", PASS)
        obs = Observations(console=text, cpus=4)
        crashed(GuestCrashed("kernel BUG at drivers/misc/lkdtm/bugs.c", text),
                res, obs, Progress({0, 1, 2, 3}, None, current=scn.steps[0]))
        judge(res, scn, obs, [], [], model_only)
        assert res.verdict == FAIL, (model_only, res.verdict, res.summary())
        assert [c.name for c in res.checks if c.verdict == FAIL] == ["kernel did not crash"]
    assert res.summary() == "expectations not evaluated (--model-only), failed: kernel did not crash, 0/0 model claims"


def test_a_report_expectation_excuses_only_its_cpu_and_step(tmp_path: Path) -> None:
    # The real WARNING on CPU 1 (console line 5), printed in step b.
    b_starts = sum(len(line) + 1 for line in WARNING.split("\n")[:3])
    unexpected = {}
    for excuse in ("{type: warning}", "{type: warning, cpu: 1}", "{type: warning, cpu: 3}",
                   "{type: warning, step: b}", "{type: warning, step: a}", "{type: warning, cpu: 1, step: b}"):
        path = tmp_path / "s.yaml"
        path.write_text("name: s\nsteps:\n  - {name: a, shell: 'true'}\n  - {name: b, shell: 'true'}\n"
                        f"expect:\n  - report: {excuse}\n")
        obs = Observations(console=WARNING, cpus=4)
        obs.steps["a"] = StepRecord("a", "shell", 0, b_starts, 0.0, [0, 1, 2, 3])
        obs.steps["b"] = StepRecord("b", "shell", b_starts, len(WARNING), 0.0, [0, 1, 2, 3])
        result = ScenarioResult(scenario.load(path), "default", PASS)
        _unexpected_reports(result, result.scenario, obs, [], False)
        unexpected[excuse] = result.verdict
    assert unexpected == {"{type: warning}": PASS, "{type: warning, cpu: 1}": PASS, "{type: warning, cpu: 3}": FAIL,
                          "{type: warning, step: b}": PASS, "{type: warning, step: a}": FAIL,
                          "{type: warning, cpu: 1, step: b}": PASS}


def test_missing_data_is_a_disagreement_not_silence(tmp_path: Path) -> None:
    """The model's claims against real captures with one thing missing: a
    row the reference kernel has, a clean snapshot, the 'Sending NMI' line,
    the IPI rows after boot. Each used to be skipped or "not compared"."""
    from harness.parsers import interrupts

    path = tmp_path / "s.yaml"
    path.write_text("name: s\nsteps:\n  - snapshot: before\n  - {name: trigger, sysrq: {key: l, cpu: 1}}\n"
                    "  - snapshot: after\n")
    scn = scenario.load(path)
    run = crosscheck.run_model(scn, Features.reference(None, arch="riscv64"))
    snaps = DATA / "interrupts"
    good_rows = interrupts.parse((snaps / "default-4cpus.txt").read_text()).ipi_names()

    def judge(after: str, console: str = CLEAN, boot_rows: list[str] = good_rows) -> dict[str, str]:
        obs = Observations(console=console, cpus=4, boot_ipi_rows=boot_rows)
        obs.snapshots["before"] = interrupts.parse((snaps / "default-4cpus.txt").read_text())
        obs.snapshots["after"] = interrupts.parse(after)
        for name, kind, start, end in (("1-snapshot", "snapshot", 0, 0), ("trigger", "sysrq", 0, len(console)),
                                       ("3-snapshot", "snapshot", len(console), len(console))):
            obs.steps[name] = StepRecord(name, kind, start, end, 0.1, [0, 1, 2, 3])
        return {c.name: c.verdict for c in crosscheck.crosscheck(run, obs)}

    after = (snaps / "default-4cpus-after-sysrq-l-cpu1.txt").read_text()
    clean = judge(after)
    assert clean["model: CPU backtrace interrupts before->after CPU2"] == PASS
    assert clean["model: trigger:backtrace:targets"] == PASS and clean["model: boot:ipi_rows"] == PASS
    no_row = judge((snaps / "revert-f15c21a3de1b-4cpus.txt").read_text())
    assert no_row["model: CPU backtrace interrupts before->after CPU2"] == FAIL
    corrupted = judge(after.replace("KGDB roundup interrupts", "KGDB roundup interrupts\nIPI8: 0 0"))
    assert corrupted["model: counters before->after"] == FAIL
    assert not any(" before->after CPU" in n for n in corrupted)
    quiet = "\n".join(ln for ln in CLEAN.split("\n") if "Sending NMI" not in ln)
    assert judge(after, quiet)["model: trigger:backtrace:targets"] == FAIL
    assert judge(after, boot_rows=[])["model: boot:ipi_rows"] == FAIL
