"""`machine: {exclusive: true}` under -j: real QEMU, the cached default
kernel, an in-process LocalCluster with 3 VM slots and three short cells,
the middle one exclusive. The QEMU lifetimes each run records
(summary.json's qemu_spans, host wall clock) show that the exclusive
cell's VM never shared the host. The same plan with the flag off must show
VMs overlapping, or the overlap test could not tell the difference."""
from __future__ import annotations

import json
from pathlib import Path

from helpers import PASSED, rvharness

CELLS = ("excl-a", "excl-b", "excl-c")
EXCLUSIVE = "excl-b"


def _scenarios(d: Path, exclusive: bool) -> list[str]:
    d.mkdir(parents=True)
    paths = []
    for name in CELLS:
        flag = "true" if exclusive and name == EXCLUSIVE else "false"
        p = d / f"{name}.yaml"
        # A boot takes seconds: VMs started together overlap by seconds,
        # not by a scheduling accident.
        p.write_text(f"name: {name}\nmachine: {{cpus: 2, exclusive: {flag}}}\n"
                     "steps:\n  - shell: 'true'\n")
        paths.append(str(p))
    return paths


def _spans(out: Path) -> dict[str, list[tuple[float, float]]]:
    summary = json.loads((out / "summary.json").read_text())
    assert [e["scenario"] for e in summary] == list(CELLS)
    got = {}
    for e in summary:
        assert e["verdict"] in PASSED, e
        assert e["started_at"] <= e["qemu_spans"][0][0] <= e["qemu_spans"][-1][1] <= e["ended_at"], e
        # The cell's saved result (for --resume and merge) keeps them too.
        assert json.loads((out / "cells" / f"{CELLS.index(e['scenario'])}.json").read_text())["qemu_spans"] \
            == e["qemu_spans"]
        got[e["scenario"]] = [tuple(s) for s in e["qemu_spans"]]
    return got


def _overlaps(spans: dict[str, list[tuple[float, float]]], name: str) -> list[str]:
    """The other cells whose QEMU lived at the same time as one of name's."""
    return [other for other, theirs in spans.items() if other != name
            if any(a0 < b1 and b0 < a1 for a0, a1 in spans[name] for b0, b1 in theirs)]


def _run(tmp: Path, exclusive: bool) -> dict[str, list[tuple[float, float]]]:
    out = tmp / ("on" if exclusive else "off")
    proc = rvharness("run", "-q", "-j", "3", "--kernel", "kernels/default.yaml", "--out", str(out),
                     *_scenarios(tmp / f"scn-{out.name}", exclusive), timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return _spans(out)


def test_an_exclusive_cell_never_shares_the_host(tmp_path) -> None:
    spans = _run(tmp_path, exclusive=True)
    assert _overlaps(spans, EXCLUSIVE) == [], spans
    # The flag off, the same plan runs its VMs side by side: the check above tells the two apart.
    ignored = _run(tmp_path, exclusive=False)
    assert _overlaps(ignored, EXCLUSIVE) == ["excl-a", "excl-c"], ignored
