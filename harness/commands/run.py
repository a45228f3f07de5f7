"""`rvharness run`, `check`, `build` and `fetch`, and the exit code of a run."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.commands import parallel_run as parallel
from harness.commands.common import display_for, load_scenarios, out_dir
from harness.core.arch import ARCHES
from harness.core.errors import EXIT_ERROR, EXIT_FAIL, EXIT_NOTHING_RAN, EXIT_OK, InputError
from harness.core.paths import REPO_ROOT
from harness.expect.checks import ERROR, FAIL, FLAKY, SKIP
from harness.kernel import kbuild, kernelimage
from harness.run import session
from harness.scenario import parse as scenario
from harness.scenario import selection


def cmd_run(args: argparse.Namespace) -> int:

    repeats = _repeats(args)
    scenarios = load_scenarios(args.paths or [str(REPO_ROOT / "scenarios")])
    display = display_for(args)
    if args.list:
        return list_plan(args, scenarios)
    if args.k is not None:
        chosen = selection.compile_expr(args.k)
        scenarios = [s for s in scenarios if chosen(s)]
        if not scenarios:
            raise InputError(None, f"-k '{args.k}' selects no scenario (try --list)")
    out = out_dir(args)
    junit = Path(args.junit) if args.junit else out / "junit.xml"
    if parallel.wanted(args):
        return exit_code(parallel.execute(args, "run", scenarios, session.kernel_sources(args, display),
                                          False, out, junit, display), flaky_fails=getattr(args, "flaky", "pass") == "fail")
    kernels = session.kernels(args, display)
    results = session.run_all(scenarios, kernels, out, Path(args.junit) if args.junit else out / "junit.xml",
                              display, follow=args.follow, model_only=args.model_only, repeats=repeats)
    return exit_code(results, flaky_fails=getattr(args, "flaky", "pass") == "fail")


def _repeats(args: argparse.Namespace) -> int:
    """--repeats N, checked before anything boots."""
    n = getattr(args, "repeats", 1)
    if n < 1:
        raise InputError(None, f"--repeats expects a number of runs of 1 or more, got {n}")
    if n > 1 and (args.shard or args.resume):
        raise InputError(None, "--repeats above 1 cannot be combined with --shard or --resume "
                               "(a scenario's runs are judged together, in one run)")
    return n


def exit_code(results: list, flaky_fails: bool = False) -> int:
    """2 when the harness could not judge something, 1 when a kernel failed
    a check (or, with --flaky fail, passed only on a retry), 5 when every
    scenario was skipped (no check ran), else 0."""
    if any(r.verdict == ERROR for r in results):
        return EXIT_ERROR
    if any(r.verdict == FAIL for r in results) or (flaky_fails and any(r.verdict == FLAKY for r in results)):
        return EXIT_FAIL
    if results and all(r.verdict == SKIP for r in results):
        print("rvharness: every scenario was skipped: no check ran", file=sys.stderr)
        return EXIT_NOTHING_RAN
    return EXIT_OK


def list_plan(args: argparse.Namespace, scenarios: list[scenario.Scenario]) -> int:
    """--list: what would run on which kernel, and why the rest would not."""

    if args.kernel_image:
        built, _ = kernelimage.prebuilt(Path(args.kernel_image), ARCHES[args.arch],
                                        Path(args.build_dir) if args.build_dir else None)
        known = [(built.recipe_name, built.config)]
    else:
        known = []
        for r in session.recipes(args.kernel, args.patch, args.tree):
            cached = kbuild.lookup(r)
            known.append((r.name, cached.config if cached else None))
    print(selection.format_plan(selection.plan(scenarios, args.k, known)))
    return EXIT_OK


