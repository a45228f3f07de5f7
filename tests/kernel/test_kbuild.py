"""Kernel builds: the cache, its lock, the pristine source staying pristine."""
from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from helpers import ROOT, RVHARNESS

from harness.core.paths import cache_dir
from harness.kernel import kbuild
from harness.kernel.recipe import load_recipe

pytestmark = pytest.mark.integration


def test_reverted_kernel_differs_and_source_stays_pristine(default_kernel, revert_backtrace_kernel) -> None:
    assert default_kernel.key != revert_backtrace_kernel.key
    for k in (default_kernel, revert_backtrace_kernel):
        for name in ("Image", "System.map", "vmlinux", ".config"):
            assert (k.dir / name).stat().st_size > 0
    assert "arch_trigger_cpumask_backtrace" in default_kernel.system_map.read_text()
    assert "arch_trigger_cpumask_backtrace" not in revert_backtrace_kernel.system_map.read_text()
    # The patched tree is a hard-link farm of the pristine one; patching must
    # not have written through the links.
    resolved = kbuild.resolve_source(load_recipe(ROOT / "kernels/default.yaml").source)
    assert "IPI_CPU_BACKTRACE" in (resolved.root / "arch/riscv/kernel/smp.c").read_text()


def test_concurrent_builds_of_one_key_share_one_result(default_kernel, tmp_path: Path) -> None:
    # A key no earlier run can have cached: the test must see a real build
    # race, not two cache hits left over from a previous run on this machine.
    token = uuid.uuid4().hex
    patch = tmp_path / "comment-only.patch"
    patch.write_text((ROOT / "tests/data/patches/comment-only.patch").read_text()
                     .replace("comment only)", f"comment only, run {token})"))
    argv = [*RVHARNESS, "build", "kernels/default.yaml", "--patch", str(patch)]
    procs = [subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=1800) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    images = {o[0].strip() for o in outs}
    assert len(images) == 1
    image = Path(images.pop())
    assert image.is_file() and image.parent.parent == cache_dir() / "kernels"
    # Exactly one of the two built; the other waited on the lock and hit the cache.
    assert sum("building kernel" in o[1] for o in outs) == 1, outs
    assert not list((cache_dir() / "kernels").glob(".*.tmp*"))
    assert image.parent.name != default_kernel.key
    # Each run makes a new key; don't let them pile up in the user's cache.
    shutil.rmtree(image.parent)
    image.parent.with_name(image.parent.name + ".lock").unlink(missing_ok=True)
