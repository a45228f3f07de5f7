"""Scenario validation: every error names file, line and what was expected,
before any QEMU starts."""
from pathlib import Path

import pytest

from harness import scenario
from harness.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
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
