"""A guest panic driven from outside (pvpanic path): the scenario ends with it,
optionally after a vCPU probe of the stopped machine."""
from __future__ import annotations

from typing import TYPE_CHECKING

from harness.expect.observations import Observations, StepRecord
from harness.guest import faults, vcpu_probe
from harness.model.prediction import REFUSED, Prediction
from harness.model.state import Span
from harness.model.timing import DUR_BACKGROUND
from harness.scenario.types import Step
from harness.steps import fields as v
from harness.steps.base import StepContext, StepType

if TYPE_CHECKING:
    from harness.model.engine import Model


def execute(live: StepContext, step: Step, rec: StepRecord, obs: Observations, online: set[int]) -> None:
    a = step.args
    rec.detail.update(faults.panic(live.fault, a["cpu"], step.timeout))
    if a["probe"]:
        # GUEST_PANICKED comes from a panic notifier, after smp_send_stop()
        # has returned: the probe sees which CPUs the stop reached, whatever
        # the kernel printed about it (QEMU runs on: -action panic=none).
        rec.detail["probe"] = a["probe"]
        obs.probes[a["probe"]] = vcpu_probe.probe(live.qmp, a["probe"], live.system_map, live.arch,
                                                 live.fault.harts, 3)
    rec.detail["ends_scenario"] = "the guest panicked, as the step asked"


def transition(m: Model, p: Prediction, a: dict, step: Step) -> Span:
    """LKDTM PANIC with pvpanic-pci: the harness leaves kdb (kgdb_panic)
    with go, and panic() goes on to the notifiers: GUEST_PANICKED."""
    f = m.features
    cpu = a.get("cpu")
    if not f.lkdtm:
        p.outcome = {REFUSED}
        p.note("kernel without CONFIG_LKDTM")
        return DUR_BACKGROUND
    cands = m.entry_cpus(p, None if cpu is None else int(cpu), "proc", background=True)
    if not cands:
        return DUR_BACKGROUND
    p.facts["panic:event"] = ("QEMU reports GUEST_PANICKED (pvpanic)", True)
    return m.branch(p, cands, lambda q, c: m.panic(q, c, "dumptest", leave_kdb=True, probe=bool(a.get("probe"))))


STEP = StepType(
    kind="panic",
    shorthand="cpu",
    fields={
        "cpu": (int, False, None, v.cpu),
        "probe": (str, False, None, None),
    },
    execute=execute,
    transition=transition,
    needs=lambda a: frozenset({"harts"}) if a.get("probe") else frozenset(),
)
