"""`rvharness check`: scenario files, recipes and patches validated without booting."""
from __future__ import annotations

import argparse
from pathlib import Path

from harness.commands.common import load_scenarios
from harness.core.errors import EXIT_OK
from harness.run import session
from harness.scenario import preflight


def cmd_check(args: argparse.Namespace) -> int:
    recipes = [Path(k) for k in args.kernel] or ([session.DEFAULT_RECIPE] if args.patch else [])
    for recipe in preflight.load_recipes(recipes, [Path(p) for p in args.patch]):
        print(f"ok    {recipe.path}: {recipe.name}, {len(recipe.patches)} patches")
    for scn in load_scenarios(args.paths):
        print(f"ok    {scn.path}: {scn.name}, {len(scn.steps)} steps, {len(scn.expect)} expectations")
    return EXIT_OK
