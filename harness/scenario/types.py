"""A scenario and its steps and expectations as every layer sees them: the
loader makes them, the model predicts from the steps, the runner carries
them out and the checks judge the expectations. Kept apart from the loader
(scenario/parse.py, which needs every step type's schema) so that the model
can take steps without importing the step types."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from harness.core.yamlfile import Where


@dataclass(frozen=True)
class Step:
    """One step of a scenario, repeats already expanded, arguments complete
    (every field of its type present, defaults filled in)."""
    kind: str
    name: str
    timeout: float
    args: dict[str, Any]
    where: Where


@dataclass(frozen=True)
class MachineSettings:
    cpus: int = 4
    memory: str = "512M"
    cmdline: tuple[str, ...] = ()
    qemu_args: tuple[str, ...] = ()
    boot_timeout: float = 60.0
    reboot: bool = False        # False: -no-reboot, so a reset ends QEMU (and the scenario)
    # True: the scenario cannot share the host with other VMs (a timing
    # bound that host load breaks); a parallel run gives it every VM slot.
    exclusive: bool = False


@dataclass(frozen=True)
class Expectation:
    kind: str
    name: str
    args: dict[str, Any]
    where: Where


@dataclass(frozen=True)
class Scenario:
    name: str
    path: Path
    description: str
    covers: tuple[str, ...]
    machine: MachineSettings
    requires: tuple[str, ...]
    steps: tuple[Step, ...]
    expect: tuple[Expectation, ...]
    # commit or feature -> (names of the checks expected to fail without it, why)
    also_fails_without: Mapping[str, tuple[tuple[str, ...], str]] = field(default_factory=dict)
    skip_arch: Mapping[str, str] = field(default_factory=dict)   # arch -> why not (archskip.py)
