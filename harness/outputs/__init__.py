"""Every output format of a run, one module each: the terminal lines and
live progress (terminal.py, progress.py), summary.json and reading a run
back from its artifacts (results.py), JUnit XML (junit.py) and the static
HTML report with its plots (html.py, plots.py, templates/)."""
from __future__ import annotations

from pathlib import Path

from harness.outputs import html, junit, results


def write_all(out: Path, junit_path: Path) -> None:
    """junit.xml and report.html of the run (or matrix) whose summary.json is in out."""

    runs = results.load(out)
    junit_path.parent.mkdir(parents=True, exist_ok=True)
    junit_path.write_text(junit.render(runs))
    html.write(out, runs)
