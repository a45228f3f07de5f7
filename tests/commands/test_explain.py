"""rvharness explain: the model's predictions without booting."""
from helpers import rvharness


def test_explain_patched_and_reverted() -> None:
    proc = rvharness("explain", "scenarios/backtrace-ipi.yaml")
    assert proc.returncode == 0, proc.stderr
    assert "Sending NMI from CPU 1 to CPUs 0,2-3:" in proc.stdout
    assert "CPU backtrace interrupts (exact): cpu0 +1, cpu1 +0, cpu2 +1, cpu3 +1" in proc.stdout
    rev = rvharness("explain", "scenarios/backtrace-ipi.yaml", "--without", "f15c21a3de1b")
    assert rev.returncode == 0, rev.stderr
    assert "backtrace IPI no" in rev.stdout and "Sending NMI" not in rev.stdout


def test_explain_rejects_a_commit_the_model_does_not_know() -> None:
    proc = rvharness("explain", "scenarios/backtrace-ipi.yaml", "--without", "0123456789ab")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--without" in lines[0] and "unknown commit '0123456789ab'" in lines[0], proc.stderr
    short = rvharness("explain", "scenarios/kdb-roundup.yaml", "--without", "983f121")
    assert short.returncode == 0 and "KGDB roundup IPI no" in short.stdout, short.stderr
