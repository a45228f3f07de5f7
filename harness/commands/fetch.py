"""`rvharness fetch`: the kernel source and every arch's busybox package, through a private apt configuration."""
from __future__ import annotations

import argparse

from harness.commands.common import display_for
from harness.core.arch import ARCHES
from harness.core.errors import EXIT_OK
from harness.core.paths import cache_dir
from harness.kernel import debs


def cmd_fetch(args: argparse.Namespace) -> int:
    display = display_for(args)
    wanted = [("linux-source-6.12", "all")] + [("busybox-static", a.deb_arch) for a in ARCHES.values()]
    for name, arch in wanted:
        with display.fetching(f"{name}:{arch}", cache_dir() / "debs"):
            pkg = debs.fetch(name, arch)
        print(f"{pkg.name}:{pkg.arch} {pkg.version} {pkg.path}")
    return EXIT_OK
