"""The Dask side: an in-process LocalCluster for -j N (one worker process
on 127.0.0.1 with N VM slots, nothing to start), or an existing scheduler
(--cluster tcp://HOST:8786, --scheduler-file F) whose workers are
`rvharness worker` processes; and the worker itself.

A worker advertises the resources VM=<slots> and BUILD=1: a boot task takes
one VM slot (an `exclusive: true` scenario takes all of them), a build task
takes BUILD and every VM slot, because a kernel build uses every core and
would starve the VMs being timed beside it (the host-wide build lock in
kbuild serialises builds across workers of one host).

The worker process is the parent of its QEMU processes (PR_SET_PDEATHSIG:
they die with it). LocalCluster's worker exits as soon as the client that
spawned it dies (distributed's AsyncProcess watches a pipe to its parent),
so a SIGKILLed `rvharness run -j` takes its VMs with it too."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass
from typing import Any, Iterator

from harness.core import children
from harness.core.errors import HarnessError
from harness.run.parallel import ledger, tasks

LOCAL_NAME = "local"
SCHEDULER_CONNECT_TIMEOUT = 30      # seconds to reach a given scheduler
WORKERS_TIMEOUT = 120               # seconds to wait for the first worker to join it


class ClusterError(HarnessError):
    """The scheduler cannot be reached, or was lost mid-run."""


@dataclass(frozen=True)
class ClusterTarget:
    jobs: int | None = None
    cluster: str | None = None
    scheduler_file: str | None = None

    @property
    def local(self) -> bool:
        return not (self.cluster or self.scheduler_file)


LEDGER_PLUGIN = "rvharness-ledger"


def ledger_plugin(worker_name: str) -> Any:
    """The plugin installed on every worker: sweep what a dead worker of
    this name left, then keep this worker's own ledger. A WorkerPlugin
    subclass, made here so that importing this module loads no dask (the
    command line starts in 0.25 s, dask alone takes 0.4 s); cloudpickle
    sends the class by value to the worker processes."""
    from distributed.diagnostics.plugin import WorkerPlugin  # heavy: dask only with -j or --cluster

    class LedgerPlugin(WorkerPlugin):
        name = LEDGER_PLUGIN

        def __init__(self, worker_name: str) -> None:
            self.worker_name = worker_name

        def setup(self, worker) -> None:
            for line in ledger.sweep(self.worker_name):
                print(f"rvharness-worker {self.worker_name}: swept: {line}", file=sys.stderr, flush=True)
            children.install_ledger(ledger.FileLedger(self.worker_name))

        def teardown(self, worker) -> None:
            led = children._ledger
            if isinstance(led, ledger.FileLedger):
                led.close()
            children.install_ledger(None)

    return LedgerPlugin(worker_name)


def resources(slots: int) -> dict[str, float]:
    return {"VM": float(slots), "BUILD": 1.0}


def _quiet() -> None:
    for name in ("distributed", "distributed.worker", "distributed.scheduler", "distributed.nanny",
                 "distributed.core", "distributed.comm", "distributed.client"):
        logging.getLogger(name).setLevel(logging.ERROR)


@contextlib.contextmanager
def client(where: ClusterTarget) -> Iterator["object"]:
    """A connected distributed.Client; its cluster ends with the block when it is ours."""
    from distributed import Client, LocalCluster  # heavy: dask only with -j or --cluster

    _quiet()
    if where.local:
        jobs = max(1, where.jobs or 1)
        cluster = LocalCluster(n_workers=1, threads_per_worker=jobs, processes=True, host="127.0.0.1",
                               resources=resources(jobs), memory_limit=0,
                               silence_logs=logging.ERROR, name=LOCAL_NAME,
                               # dashboard_address=None still serves the scheduler's
                               # HTTP endpoints, on port 8787, and a second run at once
                               # printed a port warning over the live display: no
                               # dashboard, a free loopback port.
                               dashboard_address="127.0.0.1:0",
                               scheduler_kwargs={"dashboard": False})
        try:
            with Client(cluster) as c:
                c.register_plugin(ledger_plugin(LOCAL_NAME), name=LEDGER_PLUGIN)
                yield c
        finally:
            cluster.close()
        return
    try:
        c = (Client(scheduler_file=where.scheduler_file, timeout=SCHEDULER_CONNECT_TIMEOUT)
             if where.scheduler_file else Client(where.cluster, timeout=SCHEDULER_CONNECT_TIMEOUT))
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler {where.cluster or where.scheduler_file}: "
                           f"{exc}") from None
    try:
        try:
            c.wait_for_workers(1, timeout=WORKERS_TIMEOUT)
        except TimeoutError:
            raise ClusterError(f"no worker joined the scheduler {c.scheduler.address} within "
                               f"{WORKERS_TIMEOUT} s (start some with `rvharness worker`)") from None
        yield c
    finally:
        c.close(timeout=5)


def max_slots(c) -> int:
    """The most VM slots any worker has: what an exclusive scenario takes."""
    info = c.scheduler_info(n_workers=-1)
    slots = [int(w.get("resources", {}).get("VM", 0)) for w in info["workers"].values()]
    return max(slots or [1])


# ---------------------------------------------------------------- the worker command

def run_worker(scheduler: str | None, scheduler_file: str | None, slots: int, name: str | None,
               host: str | None) -> int:
    """`rvharness worker`: a Dask worker (no nanny: this process is the
    parent of its QEMUs) with VM=slots, BUILD=1; sweeps first."""
    from distributed import Worker  # heavy: dask only with -j or --cluster



    _quiet()
    tasks.LOG_TASKS = True
    name = name or socket.gethostname()
    for line in ledger.sweep(name):
        print(f"rvharness-worker {name}: swept: {line}", file=sys.stderr, flush=True)
    own = ledger.FileLedger(name)
    children.install_ledger(own)

    async def main() -> None:
        kw = dict(nthreads=slots, resources=resources(slots), name=name, dashboard=False,
                  death_timeout=60, host=host)
        w = await Worker(scheduler_file=scheduler_file, **kw) if scheduler_file else \
            await Worker(scheduler, **kw)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(w.close(timeout=10)))
        print(f"rvharness-worker {name}: pid {os.getpid()}, {slots} VM slots, at {w.address}",
              file=sys.stderr, flush=True)
        await w.finished()

    try:
        asyncio.run(main())
    finally:
        own.close()
        children.install_ledger(None)
    return 0
