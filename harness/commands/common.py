"""What several commands read from their arguments: the display level,
the artifact directory, and the scenarios (all validated before any QEMU
starts)."""
from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from harness.display.progress import NORMAL, QUIET, VERBOSE, Display
from harness.scenario import parse as scenario
from harness.scenario import preflight


def display_for(args: argparse.Namespace) -> "Display":
    return Display(QUIET if getattr(args, "quiet", False) else
                   VERBOSE if getattr(args, "verbose", False) else NORMAL)


def out_dir(args: argparse.Namespace) -> Path:
    if args.out:
        return Path(args.out)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("rvharness-out") / stamp


def load_scenarios(paths: list[str]) -> list[scenario.Scenario]:
    # All validated, names unique, before any QEMU starts.
    return preflight.load_scenarios([Path(p) for p in paths])
