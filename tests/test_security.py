"""What a hostile or careless input must not do: a patch reaching outside the
kernel tree, QEMU options opening host files, scenario names escaping the
artifact directory, a repeat bomb, and helper processes outliving a killed
harness. Everything here runs the real code on real files and processes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import kbuild, patchpaths
from harness.errors import InputError
from harness.recipe import load_recipe
from helpers import ROOT, RVHARNESS, rvharness

# ------------------------------------------------------------------ patches

EVIL = """\
Subject: [PATCH] looks harmless

--- a/../../victim.txt
+++ b/../../victim.txt
@@ -1 +1 @@
-precious
+owned
"""

BENIGN = """\
--- a/kernel/smp.c
+++ b/kernel/smp.c
@@ -1,3 +1,3 @@
 line1
-line2
+line2 patched
 line3
"""


def _fake_source(tmp_path: Path) -> kbuild.ResolvedSource:
    root = tmp_path / "src" / "linux"
    (root / "kernel").mkdir(parents=True)
    (root / "kernel" / "smp.c").write_text("line1\nline2\nline3\n")
    (root / "Makefile").write_text("all:\n")
    return kbuild.ResolvedSource("test:fake", root)


def _victim(work: Path) -> Path:
    """The file '../../victim.txt' names from the slot's tree (work/linux)."""
    v = work.parent / "victim.txt"
    v.parent.mkdir(parents=True, exist_ok=True)
    v.write_text("precious\n")
    return v


def test_patch_naming_parent_paths_never_touches_outside_the_tree(tmp_path: Path) -> None:
    resolved = _fake_source(tmp_path)
    work = tmp_path / "cache" / "work" / "slot"
    victim = _victim(work)
    evil, benign = tmp_path / "evil.patch", tmp_path / "benign.patch"
    evil.write_text(EVIL)
    benign.write_text(BENIGN)
    log = tmp_path / "build.log"
    with pytest.raises(InputError) as err:
        kbuild._work_tree(resolved, work, (evil,), log)
    msg = str(err.value)
    assert msg.startswith(f"{evil}:3: ") and "'a/../../victim.txt'" in msg, msg
    assert "\n" not in msg
    # The next build (other patches) used to undo the recorded names: it
    # deleted the victim and copied the pristine tree's file over it.
    tree = kbuild._work_tree(resolved, work, (benign,), log)
    assert victim.read_text() == "precious\n"
    assert "victim" not in (work / "applied.json").read_text()
    assert (tree / "kernel" / "smp.c").read_text() == "line1\nline2 patched\nline3\n"


def test_stale_state_naming_outside_files_is_not_undone(tmp_path: Path) -> None:
    # A state file written before names were checked: the restore loop
    # itself must refuse to delete outside the tree.
    resolved = _fake_source(tmp_path)
    work = tmp_path / "cache" / "work" / "slot"
    victim = _victim(work)
    benign = tmp_path / "benign.patch"
    benign.write_text(BENIGN)
    kbuild._work_tree(resolved, work, (), tmp_path / "log")
    (work / "applied.json").write_text(json.dumps(
        {"patches": None, "files": ["../../victim.txt", str(victim), "kernel/smp.c"]}))
    kbuild._work_tree(resolved, work, (benign,), tmp_path / "log")
    assert victim.read_text() == "precious\n"


@pytest.mark.parametrize("text,line,fragment", [
    (EVIL, 3, "'a/../../victim.txt', a '..' component"),
    ("--- /etc/passwd\n+++ /etc/passwd\n@@ -1 +1 @@\n-a\n+b\n", 1, "'/etc/passwd', an absolute path"),
    ("diff --git a/x b/../../x\n", 1, "'b/../../x'"),
    ("diff --git a/k b/k\nsimilarity index 90%\nrename from k\nrename to ../../../etc/x\n", 4,
     "'rename to' names '../../../etc/x'"),
    ('--- "a/\\056\\056/\\056\\056/v"\n+++ b/ok\n', 1, "'a/../../v'"),      # C-quoted dots
    ("--- a/x\t2024-01-01\n+++ b/../x 2024-01-01 10:00\n", 2, "a '..' component"),
    ("*** a/../x\n--- b/x\n", 1, "'***' names 'a/../x'"),
    ("Index: ../../x\n--- a/x\n+++ b/x\n", 1, "'Index:' names '../../x'"),
    ("diff --git a/l b/l\nnew file mode 120000\n", 2, "symbolic link"),
])
def test_unsafe_patch_headers_refused_with_line(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    p = tmp_path / "p.patch"
    p.write_text(text)
    with pytest.raises(InputError) as err:
        patchpaths.check(p)
    assert err.value.path == p and err.value.line == line, str(err.value)
    assert fragment in str(err.value), str(err.value)


def test_hunk_content_is_not_a_header(tmp_path: Path) -> None:
    # Removed and added lines that look like headers ("-- ../x" removed is
    # "--- ../x") sit inside a counted hunk: content, not file names.
    p = tmp_path / "p.patch"
    p.write_text("--- a/doc.txt\n+++ b/doc.txt\n@@ -1,2 +1,2 @@\n--- ../../etc/shadow\n"
                 "+++ /etc/passwd\n ctx\n")
    assert patchpaths.targets(p) == ["doc.txt"]


def test_shipped_patches_pass() -> None:
    for p in sorted((ROOT / "kernels" / "patches").glob("*.patch")):
        assert patchpaths.targets(p), p


def _recipe_with(tmp_path: Path, patch_text: str) -> tuple[Path, Path]:
    patch = tmp_path / "evil.patch"
    patch.write_text(patch_text)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"source: {{tree: {tmp_path}}}\npatches:\n  - evil.patch\n")
    return recipe, patch


def test_recipe_with_unsafe_patch_refused_at_load(tmp_path: Path) -> None:
    recipe, patch = _recipe_with(tmp_path, EVIL)
    with pytest.raises(InputError) as err:
        load_recipe(recipe)
    assert err.value.path == patch and err.value.line == 3


def test_cli_refuses_unsafe_patch_before_building(tmp_path: Path) -> None:
    recipe, patch = _recipe_with(tmp_path, EVIL)
    proc = rvharness("check", "--kernel", str(recipe), "scenarios/backtrace-ipi.yaml", timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"rvharness: error: {patch}:3: '---' names 'a/../../victim.txt', a '..' component: "
        "a patch may only name files inside the kernel tree"], proc.stderr
    # --patch on the command line: refused before the (cached) build starts,
    # with a cache of its own so that nothing shared could be touched.
    env = {**os.environ, "RVHARNESS_CACHE": str(tmp_path / "cache")}
    t0 = time.monotonic()
    proc = rvharness("build", "kernels/default.yaml", "--patch", str(patch), env=env, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{patch}:3: " in proc.stderr and "Traceback" not in proc.stderr
    assert time.monotonic() - t0 < 20
    assert not (tmp_path / "cache" / "work").exists()
