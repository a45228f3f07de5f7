"""A bug in the harness (an exception nobody expected) is not a kernel
verdict: the CLI exits 2 with one line, and the full traceback goes into a
file among the run's artifacts (OUT/harness-error.txt), or under the cache's
logs/ for commands that have no artifact directory. Exit 1 stays reserved
for "the kernel failed a check"."""
from __future__ import annotations

import datetime as dt
import os
import sys
import traceback
from pathlib import Path
from typing import Sequence

from harness.core.paths import cache_dir

FILE_NAME = "harness-error.txt"


def _destination(out: Path | None) -> Path:
    if out is not None:
        return out / FILE_NAME
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return cache_dir() / "logs" / f"harness-error-{stamp}-{os.getpid()}.txt"


def record(exc: BaseException, argv: Sequence[str], out: Path | None) -> str:
    """Write the traceback; return the one line the CLI prints."""
    text = (f"rvharness {' '.join(argv)}\n"
            f"python {sys.version.split()[0]}, pid {os.getpid()}, {dt.datetime.now().isoformat()}\n\n"
            + "".join(traceback.format_exception(exc)))
    path = _destination(out)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        where = f"traceback in {path}"
    except OSError as err:
        # Nowhere to write: the traceback is all there is, so it goes to
        # stderr after the one line rather than being lost.
        sys.stderr.write(text)
        where = f"traceback above (could not write {path}: {err.strerror})"
    return (f"rvharness: internal error (a bug in the harness, not a kernel verdict): "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}; {where}")
