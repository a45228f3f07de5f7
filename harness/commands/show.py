"""`rvharness show OUT [--html]`: an earlier run's or matrix's summary again,
from its artifacts, and its report.html (remade if missing)."""
from __future__ import annotations

import argparse
import os
import sys
import webbrowser
from pathlib import Path

from harness.expect.checks import ERROR, FAIL
from harness.outputs import html as html_report
from harness.outputs import lines as terminal
from harness.outputs import results


def show(out: Path, html: bool = False) -> int:
    runs = results.load(out)
    for r in runs:
        terminal.print_result(r, sys.stdout)
    print(terminal.summary_line(runs))
    cells = results.matrix_cells(out)
    if cells is not None:
        held = all(c.get("holds") for c in cells)
        print(f"matrix {'holds' if held else 'does NOT hold'}: {out / 'matrix.md'}")
    report = out / "report.html"
    if html:
        if not report.exists():
            html_report.write(out, runs)
        print(f"report: {report.resolve()}")
        # A browser only where a person sits at a display; in CI or over
        # ssh a browser process would outlive the command.
        if sys.stdout.isatty() and (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            webbrowser.open(report.resolve().as_uri())
    if any(r.verdict == ERROR for r in runs):
        return 2
    return 1 if any(r.verdict == FAIL for r in runs) else 0


def cmd_show(args: argparse.Namespace) -> int:
    return show(Path(args.out), html=args.html)
