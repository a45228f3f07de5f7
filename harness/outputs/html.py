"""report.html: a static page (no server, no script, no network) made with
Jinja2 from a run's artifacts, with matplotlib's SVGs inline.

It shows the run or matrix table; per scenario every check with expected
versus observed, the scenario's expectations apart from the model's
claims; the console log with the failing lines highlighted and linked from
their checks; backtraces per CPU side by side; the hotplug online latency
per kernel with the bound; IPI counter deltas expected versus observed;
and a timeline of steps, kernel reports and QMP events."""
from __future__ import annotations

import datetime as dt
import os
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from harness.core.errors import HarnessError
from harness.outputs import plots
from harness.outputs.lines import origin_counts, repeats_counts, summary_line
from harness.outputs.results import EXPECTATION, MODEL, SavedRun, load, matrix_cells, origin
from harness.scenario.parse import load as load_scenario

TEMPLATES = Path(__file__).with_name("templates")
ARTIFACTS = ("console.log", "observations.json", "verdicts.json", "expectations.json",
             "predictions.json", "qemu.argv", "qmp-events.jsonl")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _env() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]),
                       trim_blocks=True, lstrip_blocks=True)


def _rel(path: Path, base: Path) -> str:
    return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()


def _expectations(run: SavedRun, kind: str) -> list[dict[str, Any]]:
    """The args of the scenario's expectations of one kind, from its file
    (gone or changed since the run: none)."""

    try:
        scn = load_scenario(Path(run.file))
    except (HarnessError, OSError):
        return []
    return [e.args for e in scn.expect if e.kind == kind]


def _latency_bound(run: SavedRun) -> float | None:
    """max_ms of the scenario's latency expectation."""
    bounds = [a.get("max_ms") for a in _expectations(run, "latency")]
    return next((float(b) for b in bounds if b is not None), None)


def _check_rows(run: SavedRun, rid: str, lines: list[str], marks: dict[int, str]) -> list[dict[str, Any]]:
    rows = []
    for i, c in enumerate(run.checks):
        anchor = None
        if c["verdict"] in ("fail", "error"):
            where = run.locate(c)
            if where is not None and lines:
                anchor = f"{rid}-L{where.first + 1}"
                for n in range(where.first, where.last + 1):
                    marks.setdefault(n, f"{rid}-c{i}")
        rows.append({**c, "id": f"{rid}-c{i}", "origin": origin(c), "anchor": anchor,
                     "label": c["name"][len("model: "):] if origin(c) == MODEL and
                     c["name"].startswith("model: ") else c["name"]})
    return rows


def _backtraces(run: SavedRun) -> list[dict[str, Any]]:
    rounds = ((run.observations.get("console") or {}).get("backtraces")) or []
    out = []
    for r in rounds:
        cpus = [{"cpu": int(c), **b} for c, b in sorted((r.get("cpus") or {}).items(), key=lambda kv: int(kv[0]))]
        if cpus:
            out.append({**r, "cpu_list": cpus})
    return out


def _run_view(run: SavedRun, i: int, out: Path) -> dict[str, Any]:
    rid = f"r{i}"
    lines = [_ANSI.sub("", l) for l in run.console.split("\n")] if run.console else []
    while lines and not lines[-1].strip():
        lines.pop()
    marks: dict[int, str] = {}
    checks = _check_rows(run, rid, lines, marks)
    art = []
    if run.artifacts is not None:
        art = [(name, _rel(run.artifacts / name, out)) for name in ARTIFACTS if (run.artifacts / name).exists()]
        # the console logs of boots given up and of runs whose QEMU died (runner)
        art += [(p.name, _rel(p, out)) for p in sorted(run.artifacts.glob("console-*.log"))]
        # run --repeats: every attempt's console logs (the report shows the primary's)
        art += [(log, _rel(run.artifacts / log, out)) for a in (run.repeats or {}).get("attempts", [])
                for log in a["console_logs"]]
    return {
        "id": rid, "run": run,
        "counts": (f"{repeats_counts(run.repeats)}; " if run.repeats else "") + origin_counts(run.checks),
        "expectations": [c for c in checks if c["origin"] == EXPECTATION],
        "claims": [c for c in checks if c["origin"] == MODEL],
        "claims_failed": any(c["verdict"] in ("fail", "error") for c in checks if c["origin"] == MODEL),
        "not_compared": ((run.predictions.get("comparison") or {}).get("not_compared")) or [],
        "console": [(n + 1, text, marks.get(n)) for n, text in enumerate(lines)],
        "failed": run.verdict in ("fail", "error"),
        "artifacts": art,
        "backtraces": _backtraces(run),
        "heatmaps": [plots.heatmap(p) for p in plots.counter_pairs(run, _expectations(run, "counter"))],
        "timeline": plots.timeline(run),
        "release": run.observations.get("kernel_release") or "",
    }


def _latency_figures(runs: list[SavedRun]) -> list[dict[str, str]]:
    by_scenario: dict[str, dict[str, list[float]]] = defaultdict(dict)
    bound: dict[str, float | None] = {}
    for r in runs:
        values = plots.hotplug_latencies(r)
        if len(values) >= 2:
            by_scenario[r.scenario].setdefault(r.kernel, []).extend(values)
            bound.setdefault(r.scenario, _latency_bound(r))
    return [{"scenario": s, "svg": plots.latency_plot(series, bound[s], f"{s}: CPU online latency per kernel")}
            for s, series in by_scenario.items()]


def render(out: Path, runs: list[SavedRun]) -> str:
    views = [_run_view(r, i, out) for i, r in enumerate(runs)]
    kernels = list(dict.fromkeys(r.kernel for r in runs))
    scenarios = list(dict.fromkeys(r.scenario for r in runs))
    cell = {(v["run"].scenario, v["run"].kernel): v for v in views}
    matrix = matrix_cells(out)
    wanted = {(c["scenario"], c["kernel"]): c for c in matrix} if matrix else {}
    return _env().get_template("report.html.j2").render(
        title=f"rvharness {'matrix' if matrix else 'run'} {out.resolve().name}",
        generated=dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
        out=str(out.resolve()), summary=summary_line(runs), views=views, kernels=kernels,
        scenarios=scenarios, cell=cell, matrix=matrix is not None, wanted=wanted,
        matrix_holds=all(c.get("holds") for c in matrix) if matrix else None,
        latency=_latency_figures(runs))


def write(out: Path, runs: list[SavedRun] | None = None) -> Path:
    path = out / "report.html"
    path.write_text(render(out, runs if runs is not None else load(out)))
    return path
