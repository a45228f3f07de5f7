"""/proc/interrupts parsing on text captured from the project's own runs
(tests/data/interrupts/, written by the harness's console driver)."""
from pathlib import Path

from harness.parsers import interrupts

DATA = Path(__file__).parents[1] / "data" / "interrupts"


def load(name: str) -> interrupts.Interrupts:
    return interrupts.parse((DATA / name).read_text())


def test_four_cpus_all_ipi_rows() -> None:
    snap = load("default-4cpus.txt")
    assert snap.cpus == [0, 1, 2, 3]
    assert not snap.corrupted
    assert snap.ipi_names() == [
        "Rescheduling interrupts", "Function call interrupts", "CPU stop interrupts",
        "CPU stop (for crash dump) interrupts", "IRQ work interrupts",
        "Timer broadcast interrupts", "CPU backtrace interrupts", "KGDB roundup interrupts"]
    row = snap.row("CPU backtrace interrupts")
    assert row is not None and row.label == "IPI6" and row.counts == {0: 0, 1: 0, 2: 0, 3: 0}
    timer = snap.row("10")
    assert timer is not None and not timer.is_ipi and "riscv-timer" in timer.description


def test_delta_after_sysrq_l_from_cpu1() -> None:
    before, after = load("default-4cpus.txt"), load("default-4cpus-after-sysrq-l-cpu1.txt")
    assert interrupts.delta(before, after, "CPU backtrace interrupts") == {0: 1, 1: 0, 2: 1, 3: 1}
    assert interrupts.delta(before, after, "KGDB roundup interrupts") == {0: 0, 1: 0, 2: 0, 3: 0}


def test_offline_cpu_has_no_column_and_columns_shift() -> None:
    snap = load("default-cpu2-offline.txt")
    assert snap.cpus == [0, 1, 3]
    row = snap.row("Function call interrupts")
    assert row is not None and set(row.counts) == {0, 1, 3}
    # The third number on the line belongs to CPU 3, not CPU 2.
    line = next(l for l in (DATA / "default-cpu2-offline.txt").read_text().splitlines() if "IPI1:" in l)
    assert row.counts[3] == int(line.split()[3])
    before = load("default-4cpus-after-sysrq-l-cpu1.txt")
    assert set(interrupts.delta(before, snap, "Function call interrupts") or {}) == {0, 1, 3}


def test_reverted_kernel_lacks_backtrace_row() -> None:
    snap = load("revert-f15c21a3de1b-4cpus.txt")
    assert snap.row("CPU backtrace interrupts") is None
    assert "KGDB roundup interrupts" in snap.ipi_names()
    assert interrupts.delta(snap, snap, "CPU backtrace interrupts") is None


def test_garbage_is_flagged_not_raised() -> None:
    for text in ("", "junk\nmore junk", "           CPU0\nIPI0: x y Rescheduling\n\x00\xff"):
        assert interrupts.parse(text).corrupted


def test_a_shell_job_notice_after_the_rows_is_not_corruption() -> None:
    # A random-sequence run's snapshot: busybox sh printed "[1]+  Terminated
    # timeout 2 taskset ..." after cat's output. The rows are whole.
    snap = load("default-4cpus-job-notice.txt")
    assert not snap.corrupted and snap.row("KGDB roundup interrupts").counts == {0: 1, 1: 2, 2: 2, 3: 1}
    text = (DATA / "default-4cpus-job-notice.txt").read_text()
    assert interrupts.parse(text.replace("[1]+  Terminated", "[1]+  Bogus")).corrupted
