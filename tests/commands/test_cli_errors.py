"""Bad input: one clear line naming what and where, exit code 2, no traceback."""
import os
import shutil
import sys
from pathlib import Path

import pytest
from helpers import rvharness


def assert_clean_error(proc, *fragments: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    # Progress lines ("rvharness: building ...") may come first; the error
    # is the line that says so, and nothing after it is a traceback.
    err = proc.stderr.strip()
    assert "rvharness: error: " in err, err
    err = err[err.index("rvharness: error: "):]
    for f in fragments:
        assert f in err, err


def test_missing_scenario_file(tmp_path: Path) -> None:
    assert_clean_error(rvharness("check", str(tmp_path / "nope.yaml")), "nope.yaml", "no such file")


def test_unreadable_scenario_file(tmp_path: Path) -> None:
    p = tmp_path / "s.yaml"
    p.write_bytes(b"\xff\xfe\x00garbage")
    assert_clean_error(rvharness("check", str(p)), "s.yaml", "cannot read")


def test_malformed_yaml(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("steps:\n  - snapshot: [a\n")
    assert_clean_error(rvharness("run", str(p)), f"{p}:", "malformed YAML")


def test_unknown_recipe_key(tmp_path: Path) -> None:
    r = tmp_path / "k.yaml"
    r.write_text("source: {debian: linux-source-6.12}\nconfigs: []\n")
    assert_clean_error(rvharness("run", "scenarios/", "--kernel", str(r)), f"{r}:2:1", "unknown key 'configs'")


def test_not_a_riscv_image(tmp_path: Path) -> None:
    fake = tmp_path / "Image"
    shutil.copy("/bin/true", fake)
    assert_clean_error(rvharness("run", "scenarios/", "--kernel-image", str(fake)),
                       str(fake), "not a riscv64 kernel Image")


def test_missing_qemu(tmp_path: Path) -> None:
    # A PATH with python but without qemu-system-riscv64.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "python3").symlink_to(sys.executable)
    env = {**os.environ, "PATH": str(bindir)}
    image = tmp_path / "Image"
    image.write_bytes(b"\0" * 48 + b"RISCV\0\0\0RSC\x05" + b"\0" * 64)
    proc = rvharness("run", "scenarios/", "--kernel-image", str(image), "--out", str(tmp_path / "o"), env=env)
    # The initramfs comes from the cache or apt; either way QEMU is what must be named.
    assert_clean_error(proc, "qemu-system-riscv64", "qemu-system-misc")


def test_missing_cross_compiler(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "python3").symlink_to(sys.executable)
    env = {**os.environ, "PATH": str(bindir)}
    assert_clean_error(rvharness("build", "kernels/default.yaml", env=env),
                       "riscv64-linux-gnu-gcc", "gcc-riscv64-linux-gnu")


@pytest.mark.integration
def test_patch_that_does_not_apply(tmp_path: Path) -> None:
    bad = tmp_path / "bad.patch"
    bad.write_text("--- a/Makefile\n+++ b/Makefile\n@@ -1,3 +1,3 @@\n-no such line\n+x\n context\n context\n")
    proc = rvharness("build", "kernels/default.yaml", "--patch", str(bad))
    assert_clean_error(proc, "bad.patch", "does not apply")
    from harness.core.paths import cache_dir
    assert not list((cache_dir() / "work").glob("*/*/Makefile.rej")), "patch left a reject file"
