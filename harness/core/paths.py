"""Where the harness keeps things: the XDG cache, private run directories."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]   # harness/core/paths.py


def cache_dir() -> Path:
    base = os.environ.get("RVHARNESS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "rvharness")
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def private_dir(parent: Path | None = None, prefix: str = "rvh-") -> Path:
    """A fresh directory only the current user can enter (mode 0700)."""
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    os.chmod(path, 0o700)
    return path


def make_private(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path
