"""Submitting a plan's cells to Dask and collecting their results in the
serial order. Builds first (one task per kernel cache key, top priority),
then one boot task per cell depending on its kernel's build; earlier
cells get higher priority, so VMs start roughly in the serial order and
results can be printed in it without waiting for the end."""
from __future__ import annotations

import shutil
import sys
import time
import uuid
from concurrent.futures import CancelledError
from pathlib import Path
from typing import Sequence

from harness.core.errors import HarnessError
from harness.core.names import safe
from harness.display.progress import Display
from harness.display.slots import SlotsView
from harness.expect.checks import ERROR
from harness.expect.result import ScenarioResult
from harness.kernel import kbuild
from harness.kernel.recipe import Recipe
from harness.outputs import lines as terminal
from harness.run import attempts
from harness.run.parallel import cluster, plan, tasks
from harness.run.parallel.plan import PlanCell
from harness.scenario.types import Scenario

POLL = 2.0               # seconds between checks that the scheduler is still there
LOST_AFTER = 30.0        # seconds without a scheduler before the run gives up


def art_dir(out: Path, cell: PlanCell) -> Path:
    base = out / safe(cell.kernel) / safe(cell.scenario)
    return attempts.attempt_dir(base, cell.attempt) if cell.attempt else base


def _group(order: Sequence[PlanCell], i: int) -> list[PlanCell]:
    """The cells from order[i] that make one result: a scenario's runs
    under --repeats (next to each other, plan.cells), else the one cell."""
    first = order[i]
    if not first.attempt:
        return [first]
    j = i + 1
    while j < len(order) and order[j].attempt == first.attempt + (j - i) and \
            (order[j].kernel, order[j].scenario) == (first.kernel, first.scenario):
        j += 1
    return list(order[i:j])


def _combine(group: list[PlanCell], scenarios: dict[str, Scenario], out: Path,
             results: dict[int, object]) -> None:
    """A scenario's runs in results replaced by their one result, under
    the index of the first."""
    first = group[0]
    tries = [results.pop(c.index) for c in group]
    results[first.index] = attempts.combine(scenarios[first.scenario], first.kernel,
                                            out / safe(first.kernel) / safe(first.scenario), tries)


def _write_files(dest: Path, files: dict[str, bytes]) -> None:
    if dest.exists():
        shutil.rmtree(dest)        # a half-written earlier attempt of this cell
    for rel, data in files.items():
        p = (dest / rel).resolve()
        if not p.is_relative_to(dest.resolve()):
            raise HarnessError(f"a worker sent an artifact outside its cell: {rel}")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def _infra_result(scn: Scenario, cell: PlanCell, out: Path, why: str):
    return ScenarioResult(scn, cell.kernel, ERROR, artifacts=art_dir(out, cell),
                          reason=f"infrastructure: {why}")


def _spread(c, builds: dict, spread: set[str]) -> None:
    """Copy each finished kernel to every worker, so that a worker's death
    does not lose the only copy and build it again (each key is built
    once per cluster). Dask's memory manager keeps a copy per worker that
    waits on it."""
    for name, f in builds.items():
        if name not in spread and getattr(f, "status", "") == "finished" and len(c.scheduler_info()["workers"]) > 1:
            try:
                c.replicate([f])
            except Exception:  # noqa: BLE001 - an optimisation: a lost kernel is rebuilt (a cache hit)
                pass
            spread.add(name)


def _submit_builds(c, kernels: dict[str, Recipe | kbuild.BuiltKernel], todo: Sequence[PlanCell],
                   slots: int) -> dict:
    """One future per kernel the cells use: a kernel built already is
    scattered to every worker, a recipe becomes a build task (top priority)."""
    builds = {}
    for name in dict.fromkeys(cl.kernel for cl in todo):
        k = kernels[name]
        if isinstance(k, kbuild.BuiltKernel):
            builds[name] = c.scatter(tasks.blob_of(k), broadcast=True)
        else:
            builds[name] = c.submit(tasks.build, k, key=f"build-{kbuild.key_of(k)}",
                                    resources={"BUILD": 1, "VM": slots}, retries=1, priority=10_000)
    return builds


def _submit_boots(c, builds: dict, kernels: dict[str, Recipe | kbuild.BuiltKernel],
                  scenarios: dict[str, Scenario], todo: Sequence[PlanCell], out: Path, ship: bool,
                  model_only: bool, total: int, slots: int) -> dict:
    """One boot task per cell, after its kernel's build; earlier cells get
    higher priority. Returns future -> cell."""
    run_id = uuid.uuid4().hex[:8]
    boots = {}
    for cl in todo:
        scn = scenarios[cl.scenario]
        need = slots if scn.machine.exclusive else 1
        boots[c.submit(tasks.boot, builds[cl.kernel], tasks.Identity.of(kernels[cl.kernel]), scn,
                       str(art_dir(out, cl)), ship, model_only, cl.label, key=f"boot-{run_id}-{cl.index}",
                       resources={"VM": need}, retries=1, priority=total - cl.index)] = cl
    return boots


def _collect(c, f, cl: PlanCell, builds: dict, scenarios: dict[str, Scenario], out: Path,
             results: dict[int, object], todo: Sequence[PlanCell]) -> None:
    """Take one finished boot future: its files and saved verdict, or the
    build's error, or an infrastructure result."""
    scn = scenarios[cl.scenario]
    if f.status == "finished":
        o: tasks.BootOutcome = f.result()
        if o.files is not None:
            _write_files(art_dir(out, cl), o.files)
        results[cl.index] = o.result
        plan.save(out, plan.entry(o.result, cl.index, o.worker, o.qemu_cpu_seconds))
    elif f.status == "cancelled" or c.status != "running":
        raise cluster.ClusterError(
            f"lost the Dask scheduler; {len(results)} of {len(todo)} cells have a verdict; "
            f"run the rest with --resume {out}")
    else:
        bf = builds[cl.kernel]
        if getattr(bf, "status", "finished") == "error":
            exc = bf.exception()
            raise exc if isinstance(exc, HarnessError) else HarnessError(
                f"building {cl.kernel}: {exc}")
        results[cl.index] = _infra_result(scn, cl, out, f"{type(f.exception()).__name__}: "
                                                        f"{f.exception()}")


def run(where: cluster.ClusterTarget, kernels: dict[str, Recipe | kbuild.BuiltKernel],
        scenarios: dict[str, Scenario], todo: Sequence[PlanCell], out: Path, display: Display,
        model_only: bool, total: int) -> dict[int, object]:
    """Run the todo cells; returns index -> ScenarioResult (a scenario's
    runs under --repeats: one result, under its first run's index). Each verdict is
    saved in OUT/cells/ as it arrives; an infrastructure failure (a task
    that kept killing its workers, a harness bug) is a result with verdict
    ERROR but is not saved, so --resume runs that cell again."""
    from distributed import wait  # heavy: dask only with -j or --cluster

    results: dict[int, object] = {}
    if not todo:
        return results
    with cluster.client(where) as c:
        ship = not where.local
        slots = cluster.max_slots(c)
        view = SlotsView(display, len(todo), one_worker=where.local)
        c.subscribe_topic(tasks.SLOT_TOPIC, lambda ev: view.event(ev[1]))
        c.subscribe_topic(tasks.SAY_TOPIC, lambda ev: display.say(str(ev[1])))
        builds = _submit_builds(c, kernels, todo, slots)
        boots = _submit_boots(c, builds, kernels, scenarios, todo, out, ship, model_only, total, slots)
        spread: set[str] = set()
        next_print = 0
        order = list(todo)
        pending = set(boots)
        lost_since: float | None = None
        with view:
            while pending:
                try:
                    done, pending = wait(pending, timeout=POLL, return_when="FIRST_COMPLETED")
                except TimeoutError:
                    done = set()
                except CancelledError:
                    # The scheduler went away and took the futures with it.
                    raise cluster.ClusterError(
                        f"lost the Dask scheduler; {len(results)} of {len(todo)} cells have a verdict; "
                        f"run the rest with --resume {out}") from None
                if c.status != "running":
                    lost_since = lost_since or time.monotonic()
                    if time.monotonic() - lost_since > LOST_AFTER or c.status in ("closing", "closed"):
                        raise cluster.ClusterError(
                            f"lost the Dask scheduler ({c.status}); {len(results)} of {len(todo)} cells "
                            f"have a verdict; run the rest with --resume {out}")
                else:
                    lost_since = None
                _spread(c, builds, spread)
                for f in done:
                    _collect(c, f, boots[f], builds, scenarios, out, results, todo)
                    view.done_one()
                # The serial order: print every result whose predecessors are all in
                # (a scenario's runs under --repeats: once all are, as one result).
                while next_print < len(order):
                    group = _group(order, next_print)
                    if not all(c.index in results for c in group):
                        break
                    if group[0].attempt:
                        _combine(group, scenarios, out, results)
                    terminal.print_result(results[group[0].index], sys.stdout)
                    sys.stdout.flush()
                    next_print += len(group)
    return results
