"""Every step type, by the name scenarios use for it. The runner, the
scenario loader and the model all dispatch through this table."""
from __future__ import annotations

from harness.model import kinds
from harness.steps import (
    balloon,
    hotplug,
    kdb,
    kick,
    lkdtm,
    load,
    nmi,
    panic,
    pause,
    reset,
    shell,
    sleep,
    snapshot,
    starve,
    sysrq,
    vcpus,
    wait_for,
)
from harness.steps.base import StepType

STEP_TYPES: dict[str, StepType] = {m.STEP.kind: m.STEP for m in (
    shell, sysrq, snapshot, sleep, hotplug, kdb, lkdtm, wait_for, load,
    vcpus, pause, reset, balloon, starve, nmi, panic, kick)}

# The model dispatches through its own table (harness/model/kinds.py), filled
# from here, so that it imports no step module.
for _t in STEP_TYPES.values():
    kinds.register(_t.kind, _t.defaults, _t.transition)
