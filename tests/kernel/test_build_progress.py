"""Build progress from a real kernel build log (captured from this
project's --tree build of Debian's 6.12 source, tests/data/build/), replayed
into a file while buildlog.watched() reads it as it would read make's:
files compiled out of the slot's last count, plain periodic lines on a
non-TTY, the count kept for the next build, and the compiler's line when
a build fails."""
from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path

import pytest

from harness.display import progress
from harness.kernel import buildlog

DATA = Path(__file__).resolve().parents[1] / "data" / "build"
OK_LOG = DATA / "tree-build.log"
FAILED_LOG = DATA / "tree-build-failed.log"


def _replay(src: Path, dst: Path, seconds: float) -> threading.Thread:
    lines = src.read_text().splitlines(keepends=True)

    def write() -> None:
        with open(dst, "a") as fh:
            for i, line in enumerate(lines):
                fh.write(line)
                fh.flush()
                if i % 40 == 0:
                    time.sleep(seconds * 40 / len(lines))
    return threading.Thread(target=write)


def test_counts_compiled_files_and_failure_lines_of_real_logs() -> None:
    ok = OK_LOG.read_text()
    assert buildlog.count_compiled(ok) == sum(1 for l in ok.splitlines() if l.startswith(("  CC ", "  AS ")))
    assert buildlog.count_compiled(ok) > 100
    assert buildlog.failure_line(ok) is None
    failed = FAILED_LOG.read_text()
    line = buildlog.failure_line(failed)
    assert line is not None and "rvh_tree_test.c" in line and ": error: " in line


def test_plain_progress_while_make_writes_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "PLAIN_EVERY", 0.3)
    monkeypatch.setattr(buildlog, "POLL_SECONDS", 0.05)
    slot = tmp_path / "slot"
    slot.mkdir()
    expected = buildlog.count_compiled(OK_LOG.read_text())
    (slot / buildlog.COUNT_FILE).write_text(json.dumps({"compiled": expected}))
    log = tmp_path / "build.log"
    log.write_text("$ make olddefconfig\n  CC      scripts/kconfig/conf.o\n")   # before the watch: not counted
    err = io.StringIO()
    display = progress.Display(progress.NORMAL, stream=err, live=False)
    writer = _replay(OK_LOG, log, seconds=2.0)
    with buildlog.watched(display, "tree-linux", log, slot):
        writer.start()
        writer.join()
    lines = [l for l in err.getvalue().splitlines() if l.startswith("rvharness: building tree-linux: ")]
    assert len(lines) >= 3, err.getvalue()
    counts = [int(l.split(": ", 2)[2].split("/")[0]) for l in lines]
    assert counts == sorted(counts) and counts[-1] <= expected
    assert all(f"/{expected} files" in l and "elapsed" in l and "ETA" in l for l in lines)
    assert json.loads((slot / buildlog.COUNT_FILE).read_text())["compiled"] == expected


def test_failed_build_keeps_the_old_count_and_says_the_compiler_line(tmp_path: Path) -> None:
    slot = tmp_path / "slot"
    slot.mkdir()
    (slot / buildlog.COUNT_FILE).write_text(json.dumps({"compiled": 1234}))
    log = tmp_path / "build.log"
    err = io.StringIO()
    display = progress.Display(progress.QUIET, stream=err, live=False)
    with pytest.raises(RuntimeError):
        with buildlog.watched(display, "tree-linux", log, slot):
            log.write_text(FAILED_LOG.read_text())
            raise RuntimeError("make exited 2")
    assert json.loads((slot / buildlog.COUNT_FILE).read_text())["compiled"] == 1234
    out = err.getvalue().splitlines()
    assert len(out) == 1 and out[0].startswith("rvharness: build of tree-linux failed after ")
    assert "rvh_tree_test.c" in out[0] and ": error: " in out[0]


def test_fetch_progress_counts_bytes_arriving(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain lines name the megabytes that arrived under the download
    directory while the block ran (what was there before does not count)."""
    monkeypatch.setattr(progress, "PLAIN_EVERY", 0.3)
    (tmp_path / "old.deb").write_bytes(b"x" * 5_000_000)
    err = io.StringIO()
    display = progress.Display(progress.NORMAL, stream=err, live=False)
    with display.fetching("linux-source-6.12:all", tmp_path):
        with open(tmp_path / "partial.deb", "wb") as fh:
            for _ in range(12):
                fh.write(b"y" * 250_000)
                fh.flush()
                time.sleep(0.1)
    lines = [l for l in err.getvalue().splitlines() if l.startswith("rvharness: fetching linux-source-6.12:all: ")]
    assert lines, err.getvalue()
    sizes = [float(l.rsplit(": ", 1)[1].split()[0]) for l in lines]
    assert sizes == sorted(sizes) and 0 < sizes[-1] <= 3.0
