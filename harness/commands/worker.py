"""`rvharness worker`: a Dask worker for --cluster (harness/run/parallel/cluster.py)."""
from __future__ import annotations

import argparse

from harness.core.errors import InputError
from harness.run.parallel import cluster


def cmd_worker(args: argparse.Namespace) -> int:
    if not (args.scheduler or args.scheduler_file):
        raise InputError(None, "worker: give the scheduler's address (tcp://HOST:8786) or --scheduler-file")
    if args.slots < 1:
        raise InputError(None, f"worker: --slots must be at least 1, got {args.slots}")
    return cluster.run_worker(args.scheduler, args.scheduler_file, args.slots, args.name, args.host)
