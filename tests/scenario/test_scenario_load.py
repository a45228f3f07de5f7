"""Scenario validation: every error names file, line and what was expected,
before any QEMU starts."""
from pathlib import Path

import pytest

from harness.core.errors import InputError
from harness.scenario import parse as scenario

ROOT = Path(__file__).resolve().parents[2]
GOOD = """\
name: t
machine: {cpus: 4}
steps:
  - snapshot: before
  - name: trigger
    sysrq: {key: l, cpu: 1}
  - snapshot: after
expect:
  - counter: {row: CPU backtrace interrupts, between: [before, after], delta: {1: 0, others: 1}}
  - backtrace: {step: trigger, sender: 1}
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(text)
    return p


def test_shipped_scenarios_validate() -> None:
    for f in scenario.discover([ROOT / "scenarios"]):
        scn = scenario.load(f)
        assert scn.steps and scn.expect, f


def test_good_scenario(tmp_path: Path) -> None:
    scn = scenario.load(write(tmp_path, GOOD))
    assert [s.kind for s in scn.steps] == ["snapshot", "sysrq", "snapshot"]
    assert scn.steps[1].args == {"key": "l", "cpu": 1, "via": "proc"}
    assert scn.expect[0].args["delta"] == {1: 0, "others": 1}


@pytest.mark.parametrize("old,new,line,fragment", [
    ("cpu: 1}", "cpu: 4}", 6, "CPU 4 out of range"),
    ("  - snapshot: before\n", "  - snapshot: before\n    bogus: 1\n", 5, "unknown key 'bogus'"),
    ("sysrq: {key: l, cpu: 1}", "sysrq: {cpu: 1}", 6, "missing required key 'key'"),
    ("sysrq: {key: l, cpu: 1}", "sysrq: {key: L, cpu: 1}", 6, "single sysrq key"),
    ("sysrq: {key: l, cpu: 1}", "sysrq: {key: l, cpu: one}", 6, "expected an integer"),
    ("machine: {cpus: 4}", "machine: {cpus: 4, gpus: 1}", 2, "unknown key 'gpus'"),
    ("between: [before, after]", "between: [before, later]", 9, "no snapshot labelled 'later'"),
    ("backtrace: {step: trigger", "backtrace: {step: trigger2", 10, "no step named 'trigger2'"),
    ("name: t\n", "name: t\nbogus: 1\n", 2, "unknown key 'bogus'"),
])
def test_errors_name_line_and_key(tmp_path: Path, old: str, new: str, line: int, fragment: str) -> None:
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(InputError) as err:
        scenario.load(path)
    assert err.value.line == line, str(err.value)
    assert fragment in str(err.value)
    assert str(path) in str(err.value)


# Each was accepted by `check` on bb27a38 and gave a check that passes
# whatever the kernel does, or a timeout that blames the kernel or never
# fires (issue 19). Line 10 is GOOD's backtrace expectation, 9 its counter.
@pytest.mark.parametrize("old,new,line,fragment", [
    ("backtrace: {step: trigger, sender: 1}", "latency: {steps: trigger, max_ms: .nan}", 10, "finite number, got nan"),
    ("backtrace: {step: trigger, sender: 1}", "latency: {steps: trigger, max_ms: .inf}", 10, "finite number, got inf"),
    ("backtrace: {step: trigger, sender: 1}", "latency: {steps: trigger, min_ms: 0}", 10, "expected a positive bound"),
    ("backtrace: {step: trigger, sender: 1}", "latency: {steps: trigger, min_ms: 9, max_ms: 5}", 10,
     "no latency can pass"),
    ("backtrace: {step: trigger, sender: 1}", "latency: {steps: trigger, max_ms: 5, count: 0}", 10, "at least 1"),
    ("  - name: trigger\n", "  - name: trigger\n    timeout: .nan\n", 6, "finite number, got nan"),
    ("  - name: trigger\n", "  - name: trigger\n    timeout: .inf\n", 6, "finite number, got inf"),
    ("  - name: trigger\n", "  - name: trigger\n    timeout: 100000\n", 6, "at most 1800"),
    ("machine: {cpus: 4}", "machine: {cpus: 4, boot_timeout: .inf}", 2, "finite number, got inf"),
    ("machine: {cpus: 4}", "machine: {cpus: 4, boot_timeout: -5}", 2, "above 0"),
    ("machine: {cpus: 4}", "machine: {cpus: 4, memory: 0M}", 2, "positive size"),
    ("  - snapshot: after\n", "  - snapshot: after\n  - sleep: .nan\n", 8, "finite number, got nan"),
    ("  - snapshot: after\n", "  - snapshot: after\n  - sleep: 86400\n", 8, "at most 1800 seconds"),
    ("  - snapshot: after\n", "  - snapshot: after\n  - reset: {after: 86400}\n", 8, "at most 1800 seconds"),
    ("backtrace: {step: trigger, sender: 1}", "kdb: {step: trigger}", 10, "names nothing it can fail on"),
    ("backtrace: {step: trigger, sender: 1}", "kdb: {step: trigger, states: {true: current}}", 10,
     "keys are CPU numbers, got True"),
    ("backtrace: {step: trigger, sender: 1}", "backtrace: {step: trigger, accounted: any}", 10,
     "names nothing it can fail on with accounted: any"),
    ("between: [before, after]", "between: [before, before]", 9, "two different snapshots"),
    ("delta: {1: 0, others: 1}", "delta: {true: 0, others: 1}", 9, "keys are CPU numbers, got True"),
    ("backtrace: {step: trigger, sender: 1}", "console: {present: ''}", 10, "matches the empty string"),
    ("backtrace: {step: trigger, sender: 1}", "console: {absent: 'x*'}", 10, "matches the empty string"),
    ("  - snapshot: after\n", "  - snapshot: after\n  - wait_for: '.*'\n", 8, "matches the empty string"),
])
def test_checks_that_cannot_fail_are_refused(tmp_path: Path, old: str, new: str, line: int, fragment: str) -> None:
    test_errors_name_line_and_key(tmp_path, old, new, line, fragment)


def test_malformed_yaml(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        scenario.load(write(tmp_path, "steps: [\n  - a: b\n  c"))
    assert "malformed YAML" in str(err.value) and err.value.line is not None


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        scenario.discover([tmp_path / "nope.yaml"])


def test_symlink_cannot_escape_directory(tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text(GOOD)
    d = tmp_path / "scenarios"
    d.mkdir()
    (d / "link.yaml").symlink_to(outside)
    with pytest.raises(InputError, match="outside the scenario directory"):
        scenario.discover([d])


def test_repeat_expands_names_and_cpus(tmp_path: Path) -> None:
    scn = scenario.load(write(tmp_path, """\
steps:
  - repeat:
      times: 2
      steps:
        - repeat:
            cpus: [1, 3]
            steps:
              - name: up
                hotplug: {cpu: "{cpu}", online: true}
expect:
  - latency: {steps: up, max_ms: 500, count: 4}
"""))
    assert [s.name for s in scn.steps] == ["up#0#0@cpu1", "up#0#1@cpu3", "up#1#0@cpu1", "up#1#1@cpu3"]
    assert [s.args["cpu"] for s in scn.steps] == [1, 3, 1, 3]


def test_repeat_cpu_out_of_range(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        scenario.load(write(tmp_path, "machine: {cpus: 2}\nsteps:\n  - repeat:\n      cpus: [0, 5]\n"
                                      "      steps: [{sleep: 1}]\n"))
    assert "CPU 5 out of range" in str(err.value) and err.value.line == 4


@pytest.mark.parametrize("step,fragment", [
    ("lkdtm: {crash: EXPLODE, cpu: 1}", "unknown LKDTM crash point"),
    ("kdb: {cpu: 1, commands: [btc, go]}", "leave 'go' out"),
    ("load: {cpu: 1, seconds: -1}", "positive number"),
    ("sysrq: {key: l, via: serial}", "'proc'"),
])
def test_step_field_errors(tmp_path: Path, step: str, fragment: str) -> None:
    with pytest.raises(InputError) as err:
        scenario.load(write(tmp_path, f"steps:\n  - {step}\n"))
    assert fragment in str(err.value) and err.value.line == 2, str(err.value)


def test_expectation_errors(tmp_path: Path) -> None:
    base = "steps:\n  - name: d\n    kdb: {cpu: 1}\nexpect:\n"
    for exp, fragment in (("  - kdb: {step: d, states: {1: asleep}}", "unknown state"),
                          ("  - report: {type: meltdown}", "unknown report type"),
                          ("  - latency: {steps: x, max_ms: 5}", "no step name starts with 'x'"),
                          ("  - console: {present: '('}", "bad regular expression")):
        with pytest.raises(InputError) as err:
            scenario.load(write(tmp_path, base + exp + "\n"))
        assert fragment in str(err.value) and err.value.line == 5, str(err.value)


def test_console_cpu_attribution() -> None:
    from harness.expect.checks import evaluate
    from harness.expect.observations import Observations, StepRecord
    text = ("[    2.64][   T60] Sending NMI from CPU 1 to CPUs 0,2-3:\n"
            "[    2.65][    C2] NMI backtrace for cpu 2 skipped: idling at default_idle_call+0x1e/0x2a\n"
            "[    2.65][    C0] NMI backtrace for cpu 0 skipped: idling at default_idle_call+0x1e/0x2a\n")
    obs = Observations(console=text)
    obs.steps["t"] = StepRecord("t", "sysrq", 0, len(text), 0.1, [0, 1, 2, 3])
    ctx = scenario.Ctx(4, {"t"})
    for cpu, pattern, want in ((2, "cpu 2 skipped", "pass"), (0, "cpu 2 skipped", "fail"),
                               (0, "cpu 0 skipped", "pass"), (1, "Sending NMI", "fail")):
        exp = scenario._parse_expect(Path("x.yaml"), {"console": {"step": "t", "cpu": cpu, "present": pattern}},
                                     scenario.Where(Path("x.yaml")), 0, ctx)
        assert evaluate(exp, obs).verdict == want, (cpu, pattern)


def test_event_names_are_qemus(tmp_path: Path) -> None:
    bad = tmp_path / "ev.yaml"
    bad.write_text("name: ev\nsteps:\n  - shell: 'true'\nexpect:\n  - event: {name: GUEST_PANICED}\n")
    with pytest.raises(InputError, match=r"ev.yaml:5.*unknown QMP event 'GUEST_PANICED' \(did you mean GUEST_PANICKED\?\)"):
        scenario.load(bad)
    bad.write_text("name: ev\nsteps:\n  - shell: 'true'\nexpect:\n  - event: {name: GUEST_PANICKED, present: false}\n")
    assert scenario.load(bad).expect[0].args["name"] == "GUEST_PANICKED"


def test_expectations_are_named_for_what_they_check_and_names_are_unique(tmp_path: Path) -> None:
    twice = GOOD + "  - backtrace: {step: trigger, sender: 1}\n"
    scn = scenario.load(write(tmp_path, twice))
    assert [e.name for e in scn.expect] == [
        "counter: 'CPU backtrace interrupts' before->after: delta {1: 0, 'others': 1}",
        "backtrace: every online CPU accounted for after step 'trigger' by an IPI backtrace, sent from CPU 1",
        "backtrace: every online CPU accounted for after step 'trigger' by an IPI backtrace, sent from CPU 1 (2)"]
    named = GOOD + "  - {name: same, model: true}\n  - {name: same, backtrace: {step: trigger}}\n"
    with pytest.raises(InputError) as err:
        scenario.load(write(tmp_path, named))
    assert "duplicate expectation name 'same'" in str(err.value) and err.value.line == 12, str(err.value)
