"""A kernel working copy for the --tree tests: Debian's 6.12 source (as the
harness unpacks it) with a small uncommitted change, made once in the cache
and shared by every test session.

The change adds an untracked file (kernel/rvh_tree_test.c, which prints
MARKER at boot) and edits a tracked one (kernel/Makefile). The copy is a
hard-link farm of the cache's pristine source, so edits replace files
(unlink, then write) and never write through a link."""
from __future__ import annotations

import shutil
from pathlib import Path

from harness.core import hostcmd
from harness.core.paths import cache_dir
from harness.kernel import kbuild
from harness.kernel.debs import file_lock
from harness.kernel.recipe import load_recipe

ROOT = Path(__file__).resolve().parent.parent
MARKER = "rvharness-tree-test: built from a working copy"
NEW_FILE = "kernel/rvh_tree_test.c"
SOURCE = f"""// SPDX-License-Identifier: GPL-2.0
#include <linux/init.h>
#include <linux/printk.h>

static int __init rvh_tree_test_init(void)
{{
\tpr_info("{MARKER}\\n");
\treturn 0;
}}
late_initcall(rvh_tree_test_init);
"""


def replace_file(path: Path, text: str) -> None:
    """Write text as a new file: a hard link to the pristine source stays intact."""
    path.unlink(missing_ok=True)
    path.write_text(text)


def _repair(tree: Path) -> None:
    """Put the change back as made: a test session killed while its build
    failure test had broken the new file must not leave it broken."""
    if (tree / NEW_FILE).read_text() != SOURCE:
        replace_file(tree / NEW_FILE, SOURCE)


def working_copy() -> Path:
    pristine = kbuild.resolve_source(load_recipe(ROOT / "kernels/default.yaml").source)
    base = cache_dir() / "test-trees" / pristine.identity.rsplit(":", 1)[-1][:16]
    tree = base / pristine.root.name        # the same name as the Debian work tree: ccache hits
    done = base / ".complete"
    with file_lock(base.parent / f"{base.name}.lock"):
        if done.exists():
            _repair(tree)
            return tree
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        hostcmd.run(["cp", "-al", str(pristine.root), str(tree)], "hard-linking a working copy")
        (tree / NEW_FILE).write_text(SOURCE)
        makefile = tree / "kernel/Makefile"
        replace_file(makefile, makefile.read_text() + "\nobj-y += rvh_tree_test.o\n")
        done.touch()
    return tree


if __name__ == "__main__":
    print(working_copy())
