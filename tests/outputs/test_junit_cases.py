"""JUnit's testcases as issue 19 asks: a skipped scenario is one <skipped>
with its reason (the terminal said SKIP while JUnit showed a passing
"model: every claim holds" and skipped="0"); a testcase is named by what
its expectation checks, never "counter-1"; and no testcase carries a time
nobody measured (the run's time was divided evenly among its checks)."""
from __future__ import annotations

import re
from pathlib import Path

import xmlschema
from junitparser import JUnitXml, Skipped

from harness.expect.checks import MODEL, PASS, SKIP, CheckResult
from harness.expect.result import ScenarioResult
from harness.outputs import junit, results
from harness.scenario.parse import EXPECTATION_KINDS, load

ROOT = Path(__file__).resolve().parents[2]
XSD = ROOT / "tests/data/junit-10.xsd"
SCENARIO = """\
name: {name}
steps:
  - snapshot: before
  - name: trigger
    sysrq: {{key: l, cpu: 1}}
  - snapshot: after
expect:
  - counter: {{row: CPU backtrace interrupts, between: [before, after], delta: {{1: 0, others: 1}}}}
  - backtrace: {{step: trigger, sender: 1}}
  - name: the sender names itself
    console: {{present: 'Sending NMI from CPU 1'}}
  - model: true
"""


def _result(tmp_path: Path, name: str, verdict: str, reason: str = "") -> ScenarioResult:
    art = tmp_path / name
    art.mkdir()
    (art / "s.yaml").write_text(SCENARIO.format(name=name))
    scn = load(art / "s.yaml")
    checks = [CheckResult(e.name, PASS, "x", "x") for e in scn.expect if e.kind != "model"]
    checks.append(CheckResult("model: trigger:outcome", PASS, '"ok"', '"ok"', "trigger", origin=MODEL))
    (art / "console.log").write_text("a console\n")
    return ScenarioResult(scn, "default", verdict, checks, 7.25, art, reason=reason)


def test_testcases_are_named_for_what_they_check_and_a_skip_is_one_skipped(tmp_path: Path) -> None:
    runs = [_result(tmp_path, "ran", PASS),
            _result(tmp_path, "not-here", SKIP, "inject-nmi: QEMU has no NMI for this machine")]
    results.write_summary(runs, tmp_path / "summary.json")
    path = tmp_path / "junit.xml"
    path.write_text(junit.render(results.load(tmp_path)))
    xmlschema.XMLSchema(str(XSD)).validate(str(path))
    suites = {s.name: s for s in JUnitXml.fromfile(str(path))}

    ran = suites["default/ran"]
    names = [c.name for c in ran]
    assert names == ["counter: 'CPU backtrace interrupts' before->after: delta {1: 0, 'others': 1}",
                     "backtrace: every online CPU accounted for after step 'trigger' by an IPI backtrace, "
                     "sent from CPU 1",
                     "the sender names itself", junit.MODEL_CASE], names
    auto = re.compile(rf"^({'|'.join(EXPECTATION_KINDS)})-\d+$")
    assert not [n for n in names if auto.match(n)]
    assert all(c._elem.get("time") is None for c in ran)
    assert ran.time == 7.25

    skip = suites["default/not-here"]
    cases = list(skip)
    assert len(cases) == 1 and isinstance(cases[0].result[0], Skipped)
    assert cases[0].result[0].message == "inject-nmi: QEMU has no NMI for this machine"
    assert (skip.tests, skip.skipped, skip.failures, skip.errors) == (1, 1, 0, 0)
    assert skip.time == 7.25
