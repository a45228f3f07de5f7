"""`run` and `matrix` with -j, --cluster, --scheduler-file, --shard or
--resume: the plan, the shard's part of it, what a resumed run still
lacks, the engine, and the same outputs as a serial run."""
from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Callable, Sequence

from harness.core.errors import InputError
from harness.display.progress import Display
from harness.kernel import kbuild
from harness.kernel.recipe import Recipe
from harness.run.parallel import cluster, plan, shard
from harness.run.parallel import submit as engine
from harness.run.session import finish
from harness.scenario.types import Scenario

# A VM of C vCPUs counts as C / VCPUS_PER_CORE of a host core: the shipped
# scenarios' guests idle between steps (bench/parallel measures the real
# share; its projection says how far this holds).
VCPUS_PER_CORE = 4


def default_jobs(scenarios: Sequence[Scenario], cells: int) -> int:
    cores = len(os.sched_getaffinity(0))
    vcpus = sum(s.machine.cpus for s in scenarios) / max(1, len(scenarios))
    return max(1, min(cells, math.floor(cores * VCPUS_PER_CORE / max(1.0, vcpus))))


def wanted(args) -> bool:
    return any(getattr(args, a, None) is not None for a in ("jobs", "cluster", "scheduler_file", "shard"))


def execute(args, command: str, scenarios: list[Scenario], sources: list[Recipe | kbuild.BuiltKernel],
            own_arch_only: bool, out: Path, junit: Path, display: Display) -> list:
    """Every result of this shard (or the whole plan) in the serial order."""

    names = [(k.recipe_name if isinstance(k, kbuild.BuiltKernel) else k.name,
              k.arch.name) for k in sources]
    by_name = {n: k for (n, _), k in zip(names, sources)}
    repeats = getattr(args, "repeats", 1)
    all_cells = plan.cells(scenarios, names, own_arch_only, repeats)
    part = shard.parse(args.shard) if args.shard else None
    mine = shard.select(all_cells, part) if part else all_cells
    if getattr(args, "resume", None):
        before = plan.plan_cells(plan.read(out))
        if [(c.kernel, c.scenario) for c in before] != [(c.kernel, c.scenario) for c in all_cells]:
            raise InputError(out / plan.PLAN, "the scenarios or kernels are not those of the run to resume "
                                              "(a scenario file or recipe changed since)")
    else:
        plan.write(out, command, list(args._argv), all_cells, str(part) if part else None)
    if part:
        kernels = ", ".join(shard.kernels_of(all_cells, part)) or "nothing (fewer kernels than shards)"
        display.say(f"shard {part}: {len(mine)} of {len(all_cells)} cells; kernels: {kernels}")
    # --repeats runs every run of a scenario (no --resume): cells kept from an
    # earlier run in OUT would split a scenario's runs.
    saved = {i: e for i, e in plan.saved(out).items() if i < len(all_cells)} if repeats == 1 else {}
    todo = [c for c in mine if c.index not in saved]
    if saved:
        display.say(f"resume: {len([c for c in mine if c.index in saved])} cells have a verdict, "
                    f"{len(todo)} to run")
    scn_by = {s.name: s for s in scenarios}
    jobs = args.jobs if args.jobs else default_jobs(scenarios, len(todo)) if args.jobs == 0 else 1
    where = cluster.ClusterTarget(jobs, args.cluster, args.scheduler_file)
    if where.local and todo:
        display.say(f"{jobs} VM{'s' if jobs > 1 else ''} at once (in-process Dask LocalCluster)")
    got = engine.run(where, by_name, scn_by, todo, out, display, getattr(args, "model_only", False),
                     len(all_cells))
    results = [got[c.index] if c.index in got else plan.result_of(saved[c.index], scn_by[c.scenario])
               for c in mine if c.attempt <= 1]       # a scenario's later runs are in its first's result
    finish(results, out, junit)
    return results


def resumed(args: argparse.Namespace, parse: Callable[[list[str]], argparse.Namespace]) -> argparse.Namespace:
    """run/matrix --resume OUT: the arguments of the run in OUT, with this
    command's choice of engine (-j, --cluster, --scheduler-file)."""

    out = Path(args.resume)
    doc = plan.read(out)
    if doc["command"] != args.command:
        raise InputError(out / plan.PLAN, f"that was a '{doc['command']}', not a '{args.command}'")
    old = parse(doc["argv"])
    engine = ("jobs", "cluster", "scheduler_file")
    if any(getattr(args, a) is not None for a in engine):
        for a in engine:            # this command's engine replaces the old one's
            setattr(old, a, getattr(args, a))
    if old.jobs is None and not (old.cluster or old.scheduler_file):
        old.jobs = 0
    old.out, old.resume, old._argv = str(out), str(out), doc["argv"]
    return old
