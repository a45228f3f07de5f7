"""The two Dask task types. build(recipe) runs under the key
'build-<kernel cache key>', so a cluster builds each key once whoever asks;
its result carries the kernel's artifacts as bytes, so that a worker on
another machine, without the builder's cache, gets them through Dask and
puts them in its own content-addressed cache (kbuild.install, atomic
rename). boot(kernel, scenario) runs one scenario and returns its
ScenarioResult (the verdict, every check, hence the JUnit) and, when the
client cannot see the worker's disk, the artifact files.

A failing kernel is a verdict, never an exception: only infrastructure
errors (a harness bug raising, a worker that died) reach Dask, which
retries them."""
from __future__ import annotations

import hashlib
import resource
import shutil
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from harness.core.arch import ARCHES
from harness.core.errors import HarnessError
from harness.core.paths import cache_dir
from harness.kernel import initramfs, kbuild
from harness.kernel.recipe import Recipe
from harness.run.runner import run_scenario
from harness.scenario.types import Scenario

SLOT_TOPIC = "rvharness-slot"     # worker -> client: what a VM slot is doing
SAY_TOPIC = "rvharness-say"       # worker -> client: one-off lines (a build started, its log)


@dataclass(frozen=True)
class KernelBlob:
    """A built kernel as it travels between workers: the content of one
    cache key, which several recipes may share (their Identity is apart)."""
    key: str
    arch: str
    files: dict[str, bytes] = field(compare=False)
    meta: dict = field(compare=False, default_factory=dict)
    compiled: bool = False          # this build task compiled it (False: it was in the cache)
    built_by: str = ""


@dataclass(frozen=True)
class Identity:
    """What a recipe adds to the Image it shares with other recipes: its
    name, the seed commits it declares absent and its command line. Two
    recipes may build one cache key (kernels/arm64/without-pseudo-nmi.yaml
    is the default's Image booted with irqchip.gicv3_pseudo_nmi=0), and the
    build task of that key runs once, for whichever asked first, so a boot
    takes its identity from its own recipe, never from the blob."""
    recipe_name: str
    model_without: tuple[str, ...]
    cmdline: tuple[str, ...]

    @classmethod
    def of(cls, k: "Recipe | kbuild.BuiltKernel") -> "Identity":
        name = k.name if isinstance(k, Recipe) else k.recipe_name
        return cls(name, tuple(k.model_without), tuple(k.cmdline))


@dataclass
class BootOutcome:
    result: object                  # runner.ScenarioResult, artifacts pointing at the client's path
    files: dict[str, bytes] | None  # relative path -> bytes, when the artifacts were shipped
    worker: str
    qemu_cpu_seconds: float         # CPU time of the processes this task reaped (QEMU): a
                                    # per-scenario figure only when the worker ran nothing else


def _worker_name() -> str:
    try:
        from distributed import get_worker  # heavy: dask only on a worker
        w = get_worker()
        return str(w.name)
    except ValueError:
        return "client"


def _event(topic: str, msg: dict | str) -> None:
    try:
        from distributed import get_worker  # heavy: dask only on a worker
        get_worker().log_event(topic, msg)
    except ValueError:
        pass            # not in a worker (a unit test calling the task directly)


# `rvharness worker` logs each task on its stderr (the fault tests count
# attempts from it); LocalCluster's worker shares the client's terminal.
LOG_TASKS = False


def _log(line: str) -> None:
    if LOG_TASKS:
        print(f"rvharness-worker {_worker_name()}: {line}", file=sys.stderr, flush=True)


def blob_of(built: kbuild.BuiltKernel, compiled: bool = False) -> KernelBlob:
    files = {n: (built.dir / n).read_bytes() for n in kbuild.ARTIFACTS if (built.dir / n).exists()}
    if not files.get("Image"):
        raise HarnessError(f"kernel {built.recipe_name}: no Image in {built.dir}")
    key = built.key
    if len(key) != 64:      # a prebuilt Image (--kernel-image): name it by its content
        key = "prebuilt-" + hashlib.sha256(files["Image"]).hexdigest()
    return KernelBlob(key, built.arch.name, files, {"recipe": built.recipe_name}, compiled, _worker_name())


def build(recipe: Recipe) -> KernelBlob:
    """Build (or find in this worker's cache) one recipe."""
    cached = kbuild.lookup(recipe) is not None
    _log(f"build {recipe.name} ({'cached' if cached else 'compiling'})")
    built = kbuild.build(recipe, progress=lambda m: _event(SAY_TOPIC, m))
    return blob_of(built, compiled=not cached)


def local_kernel(blob: KernelBlob, ident: Identity) -> kbuild.BuiltKernel:
    """The blob's kernel in this host's cache (used directly when already
    there), as the recipe `ident` describes it."""
    d = cache_dir() / "kernels" / blob.key
    if not (d / ".complete").exists():
        d = kbuild.install(blob.key, blob.files, {**blob.meta, "installed_from": blob.built_by})
    return kbuild.BuiltKernel(blob.key, d, ident.recipe_name, ARCHES[blob.arch], ident.model_without,
                              ident.cmdline)


class _Slots:
    """Which of this worker's VM slots a task holds (for the live display)."""
    _lock = threading.Lock()
    _busy: set[int] = set()

    @classmethod
    def take(cls) -> int:
        with cls._lock:
            n = next(i for i in range(1, 10_000) if i not in cls._busy)
            cls._busy.add(n)
            return n

    @classmethod
    def give(cls, n: int) -> None:
        with cls._lock:
            cls._busy.discard(n)


def staging_dir() -> Path:
    d = cache_dir() / "workers" / "staging"
    d.mkdir(parents=True, exist_ok=True)
    return d


def boot(blob: KernelBlob, ident: Identity, scn: Scenario, art: str, ship: bool, model_only: bool,
         cell: str) -> BootOutcome:
    """Run scn on the blob's kernel. art: the artifact directory as the
    client names it; ship: the client cannot see this worker's disk, so
    run into a private staging directory and return the files."""

    worker = _worker_name()
    slot = _Slots.take()
    _log(f"boot {cell} slot {slot}")
    where = Path(art) if not ship else staging_dir() / uuid.uuid4().hex
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    try:
        _event(SLOT_TOPIC, {"who": worker, "slot": slot, "cell": cell, "step": "booting", "t": time.time()})
        kernel = local_kernel(blob, ident)
        initrd = initramfs.build(kernel.arch)

        def on_step(step) -> None:
            _event(SLOT_TOPIC, {"who": worker, "slot": slot, "cell": cell, "step": step.name, "t": time.time()})

        res = run_scenario(scn, kernel, initrd, where, model_only=model_only, on_step=on_step)
        files = None
        if ship:
            files = {str(p.relative_to(where)): p.read_bytes() for p in sorted(where.rglob("*")) if p.is_file()}
        res.artifacts = Path(art)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        _log(f"done {cell} {res.verdict} {time.monotonic() - t0:.1f}s")
        return BootOutcome(res, files, worker, round(cpu, 2))
    finally:
        _event(SLOT_TOPIC, {"who": worker, "slot": slot, "cell": None, "step": None, "t": time.time()})
        _Slots.give(slot)
        if ship:
            shutil.rmtree(where, ignore_errors=True)
