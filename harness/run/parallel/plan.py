"""The plan of a run: its cells (one scenario on one kernel) in the serial
order, the order `rvharness run` has always used (kernels outer, scenarios
inner), which results, summary.json and JUnit keep whatever order the VMs
finish in. OUT/plan.json holds the plan and the command line that made it
(for --resume and merge); OUT/cells/<index>.json holds each cell's result
as soon as it is known, so a killed client or scheduler loses only the
cells that had no verdict yet."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from harness.core.errors import InputError
from harness.expect.checks import CheckResult
from harness.expect.result import ScenarioResult
from harness.outputs.results import summary_entry
from harness.scenario import archskip
from harness.scenario.types import Scenario

PLAN = "plan.json"
CELLS = "cells"
FORMAT = 1


@dataclass(frozen=True)
class PlanCell:
    index: int
    kernel: str          # the kernel's name (its artifact directory)
    arch: str
    scenario: str
    attempt: int = 0     # run --repeats: which of the scenario's runs (from 1); 0: the only one

    @property
    def label(self) -> str:
        return f"{self.scenario} [{self.kernel}]" + (f" run {self.attempt}" if self.attempt else "")


def cells(scenarios: Sequence[Scenario], kernels: Sequence[tuple[str, str]],
          own_arch_only: bool, repeats: int = 1) -> list[PlanCell]:
    """kernels: (name, arch) in order. own_arch_only: the matrix leaves out
    the scenarios that do not run on a kernel's arch. repeats > 1: a cell
    per run of each scenario, a scenario's runs next to each other."""
    out: list[PlanCell] = []
    for name, arch in kernels:
        for scn in scenarios:
            if own_arch_only and archskip.reason(scn, arch):
                continue
            for attempt in range(1, repeats + 1) if repeats > 1 else [0]:
                out.append(PlanCell(len(out), name, arch, scn.name, attempt))
    return out


def write(out: Path, command: str, argv: list[str], all_cells: list[PlanCell], shard: str | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    doc = {"format": FORMAT, "command": command, "argv": argv, "shard": shard,
           "cells": [[c.kernel, c.arch, c.scenario] + ([c.attempt] if c.attempt else []) for c in all_cells]}
    tmp = out / f".{PLAN}.tmp"
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, out / PLAN)


def read(out: Path) -> dict[str, Any]:
    path = out / PLAN
    try:
        doc = json.loads(path.read_text())
    except OSError:
        raise InputError(path, "not found: expected the output directory of a parallel "
                               "`rvharness run` or `matrix` (-j, --cluster or --shard)") from None
    except ValueError as exc:
        raise InputError(path, f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("cells"), list):
        raise InputError(path, f"expected a plan of format {FORMAT} with 'cells'")
    return doc


def plan_cells(doc: dict[str, Any]) -> list[PlanCell]:
    return [PlanCell(i, *c) for i, c in enumerate(doc["cells"])]


# ---------------------------------------------------------------- one cell's result

def entry(result, index: int, worker: str = "", qemu_cpu_seconds: float | None = None) -> dict[str, Any]:
    """A ScenarioResult as JSON: summary.json's entry and what resume needs back."""
    return {**summary_entry(result), "index": index, "model_only": result.model_only,
            "unexpected_reports": list(result.unexpected_reports), "worker": worker,
            "qemu_cpu_seconds": qemu_cpu_seconds}


def save(out: Path, e: dict[str, Any]) -> None:
    d = out / CELLS
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f".{e['index']}.tmp"
    tmp.write_text(json.dumps(e, indent=1))
    os.replace(tmp, d / f"{e['index']}.json")     # a cell has a verdict, or no file


def saved(out: Path) -> dict[int, dict[str, Any]]:
    found: dict[int, dict[str, Any]] = {}
    for p in sorted((out / CELLS).glob("*.json")):
        try:
            e = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(e, dict) and isinstance(e.get("index"), int):
            found[e["index"]] = e
    return found


def result_of(e: dict[str, Any], scn: Scenario):
    """Back to a ScenarioResult (for the summary, JUnit, report and matrix)."""
    return ScenarioResult(scn, e["kernel"], e["verdict"], [CheckResult(**c) for c in e["checks"]],
                          float(e["seconds"]), Path(e["artifacts"]) if e.get("artifacts") else None,
                          e.get("reason", ""), int(e.get("boot_retries", 0)), bool(e.get("model_only")),
                          list(e.get("unexpected_reports", [])), e.get("started_at"), e.get("ended_at"),
                          [list(x) for x in e.get("qemu_spans", [])])
