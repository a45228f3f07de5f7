"""`rvharness build`: one kernel recipe built (cached) and its Image path printed."""
from __future__ import annotations

import argparse

from harness.commands.common import display_for
from harness.core.errors import EXIT_OK
from harness.kernel import kbuild
from harness.run import session


def cmd_build(args: argparse.Namespace) -> int:
    display = display_for(args)
    recipe = session.recipes([args.recipe], args.patch, args.tree)[0]
    built = kbuild.build(recipe, progress=display.say, monitor=display)
    print(built.image)
    return EXIT_OK
