"""`rvharness merge OUT... --out DIR`: the output directories of the
shards of one plan, joined into one laid out as if one run had made it:
every cell's artifact directory copied to DIR/<kernel>/<scenario>,
summary.json in the serial order, then junit.xml and report.html (and, for
a matrix, matrix.json and matrix.md) written from it as a run writes them,
so the JUnit's console budgets are those of one run. junitparser reads the
shards' own junit.xml files: the merged file must hold exactly the union of
their test cases, or the merge fails."""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from junitparser import JUnitXml

from harness.commands.matrix import finish_matrix
from harness.commands.run import exit_code
from harness.core.errors import HarnessError, InputError
from harness.outputs.results import SUMMARY
from harness.run.parallel import plan
from harness.run.parallel import submit as engine
from harness.run.session import finish
from harness.scenario.preflight import load_scenarios


def _cases(junit: Path) -> set[tuple[str, str, str]]:
    xml = JUnitXml.fromfile(str(junit))
    return {(suite.name, case.classname, case.name) for suite in xml for case in suite}


def main(outs: list[Path], dest: Path) -> int:

    docs = [plan.read(o) for o in outs]
    cells_of = [d["cells"] for d in docs]
    if any(c != cells_of[0] for c in cells_of[1:]):
        raise InputError(outs[cells_of.index(next(c for c in cells_of if c != cells_of[0]))] / plan.PLAN,
                         f"a shard of another plan than {outs[0]}'s (the scenarios or kernels differ)")
    cells = plan.plan_cells(docs[0])
    got: dict[int, tuple[Path, dict]] = {}
    for o in outs:
        for i, e in plan.saved(o).items():
            if i in got:
                raise InputError(o / plan.CELLS / f"{i}.json", f"cell {cells[i].label} is also in {got[i][0]}")
            got[i] = (o, e)
    missing = [c.label for c in cells if c.index not in got]
    if missing:
        raise InputError(None, f"merge: {len(missing)} of {len(cells)} cells have no verdict in "
                               f"{', '.join(map(str, outs))}: {', '.join(missing[:5])}"
                               f"{' ...' if len(missing) > 5 else ''} (a shard missing? --resume it)")
    first = docs[0]
    files = sorted({e["file"] for _, e in got.values() if e.get("file")})
    scenarios = {s.name: s for s in load_scenarios([Path(f) for f in files])}
    dest.mkdir(parents=True, exist_ok=True)
    results = []
    for c in cells:
        src_out, e = got[c.index]
        src = Path(e["artifacts"]) if e.get("artifacts") else engine.art_dir(src_out, c)
        if not src.is_dir():
            src = engine.art_dir(src_out, c)      # the shard's directory was moved (a CI artifact)
        target = engine.art_dir(dest, c)
        if src.is_dir() and src.resolve() != target.resolve():
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(src, target)
        moved = {**e, "artifacts": str(target)}
        plan.save(dest, moved)
        results.append(plan.result_of(moved, scenarios[c.scenario]))
    plan.write(dest, first["command"], first["argv"], cells, None)
    finish(results, dest, dest / "junit.xml")
    want: set = set()
    for o in outs:
        if (o / "junit.xml").exists():
            want |= _cases(o / "junit.xml")
    have = _cases(dest / "junit.xml")
    if want != have:
        raise HarnessError(f"merge: the merged junit.xml has {len(have)} test cases, the shards' "
                           f"{len(want)}; {len(want - have)} missing, {len(have - want)} extra")
    print(f"merged {len(outs)} shards: {len(results)} cells, {len(have)} JUnit test cases")
    if first["command"] == "matrix":
        return finish_matrix(results, dest)
    assert (dest / SUMMARY).exists()
    return exit_code(results)


def cmd_merge(args: argparse.Namespace) -> int:
    return main([Path(p) for p in args.outs], Path(args.out))
