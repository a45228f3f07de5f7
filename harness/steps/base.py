"""What every step type is made of: its schema (scenario.py validates
with it), its executor (the runner calls it on a live machine) and its
model transition (the reference model calls it). One module per step type
under harness/steps/ holds all three, so adding a step type touches one
file and the registry."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

from harness.core.arch import Arch
from harness.core.yamlfile import Where
from harness.model.kinds import Transition
from harness.scenario.types import Step

if TYPE_CHECKING:
    from harness.expect.observations import Observations, StepRecord
    from harness.guest.console import Console
    from harness.guest.faults import FaultContext
    from harness.guest.qmp import QmpClient
    from harness.parsers.symbolize import SystemMap


@dataclass
class StepContext:
    """What executors act on: the console and QMP (through the fault
    context), and the kernel's symbols."""
    fault: "FaultContext"
    system_map: "SystemMap | None"
    arch: Arch

    @property
    def con(self) -> "Console":
        return self.fault.console

    @property
    def qmp(self) -> "QmpClient":
        return self.fault.qmp


# A field: (accepted types, required, default, extra validation or None).
# Validators take (value, where, ctx) and raise where.error(...).
FieldSpec = tuple[Any, bool, Any, "Callable[[Any, Where, Any], None] | None"]
Executor = Callable[[StepContext, Step, "StepRecord", "Observations", set[int]], None]


def _nothing(args: Mapping[str, Any]) -> frozenset[str]:
    return frozenset()


def _fine(step: Step, rec: "StepRecord") -> tuple[str, str] | None:
    return None


@dataclass(frozen=True)
class StepType:
    """An executor that ends the scenario on purpose (a panic driven from
    outside, kdb left holding the machine) says why in
    record.detail["ends_scenario"]; no further step runs."""
    kind: str
    shorthand: str | None          # the field a scalar value fills ({snapshot: before})
    fields: Mapping[str, FieldSpec]
    execute: Executor
    transition: Transition
    # What the run must prepare for a step with these args: "harts" (the
    # Linux-CPU-to-hart map, read while every CPU is online), "balloon" (a
    # virtio-balloon device on the QEMU command line).
    needs: Callable[[Mapping[str, Any]], frozenset[str]] = _nothing
    # The step's own check of what it did: (expected, observed) when it
    # failed (a shell command's exit status, a line waited for in vain).
    verify: Callable[[Step, "StepRecord"], tuple[str, str] | None] = _fine
    # The step asks the kernel to crash (an LKDTM crash point): the crash
    # ends the scenario and the expectations judge its report.
    crashes: Callable[[Mapping[str, Any]], bool] = lambda args: False

    def defaults(self) -> dict[str, Any]:
        return {key: default for key, (_types, _req, default, _check) in self.fields.items()}
