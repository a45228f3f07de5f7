"""Enter kdb on a chosen CPU, run commands, optionally probe the vCPUs, leave with go."""
from __future__ import annotations

from typing import TYPE_CHECKING

from harness.expect.observations import Observations, StepRecord
from harness.guest import vcpu_probe as vcpu_probe
from harness.model.prediction import MUST, NO_EFFECT, UNSUPPORTED, Prediction
from harness.model.state import Span
from harness.model.timing import DUR_CONSOLE
from harness.scenario.types import Step
from harness.steps import fields as v
from harness.steps.base import StepContext, StepType

if TYPE_CHECKING:
    from harness.model.engine import Model


def execute(live: StepContext, step: Step, rec: StepRecord, obs: Observations, online: set[int]) -> None:
    con = live.con
    a = step.args
    pending, on = con.kdb_enter(a["cpu"], step.timeout)
    rec.detail["kdb_cpu"] = on
    rec.detail["commands"] = {cmd: con.kdb_command(cmd, step.timeout) for cmd in a["commands"]}
    if a["probe"]:
        rec.detail["probe"] = a["probe"]
        # Taken while kdb holds the machine: the other CPUs sit in the round-up.
        obs.probes[a["probe"]] = vcpu_probe.probe(live.qmp, a["probe"], live.system_map, live.arch,
                                                live.fault.harts)
    refused, res = con.kdb_go(pending, step.timeout, again=a["go_twice"])
    rec.detail["go_refused"] = refused
    if res is None:
        # go_twice: false and go refused: kdb keeps the machine, as asked.
        rec.detail["ends_scenario"] = "kdb refused go and the step does not insist: the machine stays in kdb"
        return
    rec.status = res.status
    con.settle()


def transition(m: Model, p: Prediction, a: dict, step: Step) -> Span:
    f = m.features
    cpu = a["cpu"]
    via = a.get("via") or ("proc" if cpu is not None else "break")
    commands = [str(c) for c in (a.get("commands") or [])]
    go_twice = bool(a["go_twice"])
    if not f.kgdb:
        p.outcome = {UNSUPPORTED}
        p.note("kernel without CONFIG_KGDB/CONFIG_KGDB_KDB: sysrq g does nothing")
        return DUR_CONSOLE
    if not f.kgdb_attached:
        p.outcome = {NO_EFFECT}
        p.expect_console("kgdb-no-io", r"ERROR: No KGDB I/O module available", MUST)
        return DUR_CONSOLE
    candidates = m.entry_cpus(p, cpu if via == "proc" else None, via)
    if not candidates:
        return DUR_CONSOLE
    p.expect_console("sysrq-g", r"sysrq: DEBUG", MUST)
    return m.branch(p, candidates,
                        lambda q, s: m.kdb_session(q, s, via, commands, go_twice, leave=True))


STEP = StepType(
    kind="kdb",
    shorthand=None,
    fields={
        "cpu": (int, True, None, v.cpu),
        "commands": (list, False, ["btc"], v.kdb_commands),
        "probe": (str, False, None, None),
        # kdb refuses the first go when a CPU missed the round-up; answer
        # with a second go (true) or leave the machine in kdb (false).
        "go_twice": (bool, False, True, None),
    },
    execute=execute,
    transition=transition,
    needs=lambda a: frozenset({"harts"}) if a.get("probe") else frozenset(),
)
