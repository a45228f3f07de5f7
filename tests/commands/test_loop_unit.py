"""The maintainer's loop without QEMU: -k and --list, --tree's refusal of a
tree built in place and its content identity, --build-dir errors, `show`
on a directory that holds no run."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from helpers import ROOT, rvharness

from harness.core.errors import InputError
from harness.kernel import usertree
from harness.scenario import parse as scenario
from harness.scenario import selection

SCENARIOS = [scenario.load(f) for f in scenario.discover([ROOT / "scenarios"])]


def names(expr: str) -> set[str]:
    pred = selection.compile_expr(expr)
    return {s.name for s in SCENARIOS if pred(s)}


def test_k_expression_selects_by_name_and_covers() -> None:
    assert names("backtrace-ipi-busy") == {"backtrace-ipi-busy"}
    # covers: a commit prefix selects what covers it
    by_commit = names("3908ba2e")
    assert "hotplug-online-latency" in by_commit
    assert all("3908ba2e0b24" in s.covers for s in SCENARIOS if s.name in by_commit)
    assert names("kdb and not (offline or stuck)") == {"kdb-roundup"}
    assert names("qmp and (pause or nmi)") == {"qmp-pause", "qmp-nmi"}
    assert names("not backtrace and not kdb and not qmp") >= {"hotplug-online-latency", "smp-call-csd-lock"}


@pytest.mark.parametrize("expr", ["", "kdb and", "(kdb", "kdb)", "or kdb", "not"])
def test_bad_k_expression_is_one_line_exit_2(expr: str) -> None:
    with pytest.raises(InputError, match="-k"):
        selection.compile_expr(expr)
    proc = rvharness("run", "scenarios/", "-k", expr, "--list")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "-k" in proc.stderr and "expected" in proc.stderr


def test_list_says_what_runs_and_why_not(tmp_path: Path) -> None:
    proc = rvharness("run", "scenarios/", "-k", "backtrace-ipi and not stuck and not busy", "--list")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    runs = [l for l in lines if l.startswith("run ")]
    assert {l.split()[1] for l in runs} == {"backtrace-ipi", "backtrace-ipi-each-cpu", "backtrace-ipi-offline"}
    assert any(l.startswith("skip") and "kdb-roundup " in l and "deselected by -k" in l for l in lines)
    assert lines[-1] == f"3 of {len(SCENARIOS)} would run"


def test_list_names_the_missing_config_option(tmp_path: Path) -> None:
    """With --kernel-image and a .config beside it, --list says which
    scenarios the kernel cannot run and why, before any boot."""
    image = tmp_path / "Image"
    # A RISC-V Image header: "RISCV\0\0\0" at 48 and "RSC\x05" at 56.
    header = bytearray(64)
    header[48:56] = b"RISCV\0\0\0"
    header[56:60] = b"RSC\x05"
    image.write_bytes(bytes(header) + bytes(4096))
    (tmp_path / ".config").write_text("CONFIG_SMP=y\nCONFIG_MAGIC_SYSRQ=y\n")
    proc = rvharness("run", "scenarios/backtrace-ipi.yaml", "scenarios/kdb-roundup.yaml",
                     "--kernel-image", str(image), "--list")
    assert proc.returncode == 0, proc.stderr
    by_name = {l.split()[1]: l for l in proc.stdout.splitlines()[:-1]}
    assert by_name["backtrace-ipi"].startswith("run ")
    assert by_name["kdb-roundup"].startswith("skip") and "kernel lacks CONFIG_KGDB" in by_name["kdb-roundup"]


def _fake_tree(root: Path) -> Path:
    root.mkdir()
    (root / "Makefile").write_text("# not a real kernel\n")
    (root / "Kconfig").write_text("mainmenu \"fake\"\n")
    (root / "kernel").mkdir()
    (root / "kernel/a.c").write_text("int a;\n")
    return root


def test_tree_built_in_place_gets_one_line_naming_mrproper(tmp_path: Path) -> None:
    tree = _fake_tree(tmp_path / "linux")
    (tree / ".config").write_text("CONFIG_SMP=y\n")
    before = sorted(p.name for p in tree.rglob("*"))
    proc = rvharness("run", "scenarios/backtrace-ipi.yaml", "--tree", str(tree))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert str(tree) in proc.stderr and "make mrproper" in proc.stderr
    assert sorted(p.name for p in tree.rglob("*")) == before


def test_tree_that_is_no_kernel_tree(tmp_path: Path) -> None:
    proc = rvharness("build", "kernels/default.yaml", "--tree", str(tmp_path))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "not a kernel source tree" in proc.stderr


def _git(tree: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(tree), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                   check=True, capture_output=True)


def test_tree_identity_covers_uncommitted_and_untracked_content(tmp_path: Path) -> None:
    tree = _fake_tree(tmp_path / "linux")
    _git(tree, "init", "-q")
    _git(tree, "add", "-A")
    _git(tree, "commit", "-qm", "base")
    clean = usertree.identity(tree)
    assert clean.startswith("git:") and usertree.identity(tree) == clean
    (tree / "kernel/a.c").write_text("int a = 1;\n")            # uncommitted edit
    edited = usertree.identity(tree)
    assert edited != clean
    (tree / "kernel/new.c").write_text("int b;\n")              # untracked file
    untracked = usertree.identity(tree)
    assert untracked != edited
    (tree / "kernel/new.c").write_text("int b = 2;\n")          # its content, not its name
    assert usertree.identity(tree) != untracked
    (tree / "kernel/new.c").unlink()
    (tree / "kernel/a.c").write_text("int a;\n")
    assert usertree.identity(tree) == clean


def test_plain_directory_identity_follows_content(tmp_path: Path) -> None:
    tree = _fake_tree(tmp_path / "linux")
    first = usertree.identity(tree)
    assert first.startswith("files:") and usertree.identity(tree) == first
    (tree / "kernel/a.c").write_text("int a = 7;\n")
    assert usertree.identity(tree) != first


def test_build_dir_without_symbols_is_refused(tmp_path: Path) -> None:
    image = tmp_path / "Image"
    header = bytearray(64)
    header[48:56] = b"RISCV\0\0\0"
    header[56:60] = b"RSC\x05"
    image.write_bytes(bytes(header))
    empty = tmp_path / "build"
    empty.mkdir()
    proc = rvharness("run", "scenarios/backtrace-ipi.yaml", "--kernel-image", str(image),
                     "--build-dir", str(empty))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert str(empty) in proc.stderr and "System.map" in proc.stderr
    proc = rvharness("run", "scenarios/backtrace-ipi.yaml", "--build-dir", str(empty))
    assert proc.returncode == 2 and "--build-dir goes with --kernel-image" in proc.stderr


def test_show_of_a_directory_without_a_run(tmp_path: Path) -> None:
    proc = rvharness("show", str(tmp_path))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "summary.json" in proc.stderr
