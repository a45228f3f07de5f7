"""Helper processes die with the harness, even when it is SIGKILLed.

Every process the harness starts (QEMU, the starve fallback's CPU hog,
addr2line, make and the other host commands) is started with
`preexec_fn=die_with_harness()`: in the child, between fork and exec, it asks
the kernel for SIGKILL when the parent dies (prctl PR_SET_PDEATHSIG, kept
across execve). Without it a SIGKILLed harness leaves QEMU running, re-parented
to PID 1 (measured: tests/commands/test_security.py::test_sigkill_harness_kills_qemu).

Two things the kernel does that callers must know:
- the signal is sent when the *thread* that forked the child exits, not the
  process: spawn from the main thread, or from a thread that outlives the child;
- if the parent died between fork and the prctl, no signal will come: the
  child checks getppid() against the pid it was forked from and exits.
"""
from __future__ import annotations

import ctypes
import os
import signal
from typing import Callable

PR_SET_PDEATHSIG = 1        # <linux/prctl.h>
_libc = ctypes.CDLL(None, use_errno=True)     # loaded before any fork
_prctl = _libc.prctl
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_prctl.restype = ctypes.c_int


def die_with_harness() -> Callable[[], None]:
    """A preexec_fn for subprocess.Popen/run and pexpect.spawn."""
    parent = os.getpid()

    def in_child() -> None:
        if _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            os._exit(126)       # never run a helper that could outlive us
        if os.getppid() != parent:
            os._exit(1)         # the harness died before the prctl took effect
    return in_child


# ---------------------------------------------------------------- ledger
# A Dask worker keeps a ledger of the QEMU processes and private run
# directories it has alive (harness/run/parallel/ledger.py), so that when it
# is started again after a SIGKILL it can sweep what its earlier life left
# behind. Machine reports to whichever ledger the process installed; the
# plain command line installs none.

class Ledger:
    def started(self, pid: int, run_dir: str) -> None: ...
    def ended(self, pid: int) -> None: ...


_ledger: Ledger | None = None


def install_ledger(ledger: Ledger | None) -> None:
    global _ledger
    _ledger = ledger


def started(pid: int, run_dir: str) -> None:
    if _ledger is not None:
        _ledger.started(pid, run_dir)


def ended(pid: int) -> None:
    if _ledger is not None:
        _ledger.ended(pid)
