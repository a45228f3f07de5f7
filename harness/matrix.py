"""The detection matrix: seed scenarios x (patched kernel, each baseline
kernel). A baseline is named revert-<commit> (the commit reverted) or
without-<feature> (a change taken out by a patch that is not a plain
revert). A scenario must pass on the patched kernel and fail on the
baseline of something it covers; any other change is a surprise unless the
scenario names it in `also_fails_without` and explains it.

Both arches: kernels/ holds riscv64's recipes, kernels/arm64/ arm64's
(named arm64-default, arm64-revert-<what>, arm64-without-<what>). A revert
is named by its commit (prefix-matched against `covers`) or, when the
reverted change has no commit id in the seed, by a name matched exactly.
Each scenario runs on the kernels of the arches it does not skip."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from .checks import FAIL, PASS, SKIP
from .runner import ScenarioResult
from .scenario import Scenario

BASELINE = re.compile(r"^(?:[a-z0-9]+-)?(?:revert-([0-9a-f]{12,40}|[a-z][a-z0-9-]*)|without-([a-z0-9-]+))$")
BASELINE_GLOBS = ("revert-*.yaml", "without-*.yaml")
# The directory of each arch's recipes, relative to kernels/.
KERNEL_DIRS = {"riscv64": ".", "arm64": "arm64"}
_COMMIT = re.compile(r"^[0-9a-f]{7,40}$")


def recipe_paths(kernels: Path, arches: list[str] | None = None) -> list[Path]:
    """default.yaml then the baselines, for each arch asked (default: all)."""
    out: list[Path] = []
    for arch, sub in KERNEL_DIRS.items():
        if arches and arch not in arches:
            continue
        d = (kernels / sub).resolve()
        out += [d / "default.yaml"] + sorted(r for g in BASELINE_GLOBS for r in d.glob(g))
    return out


def reverted_commit(kernel_name: str) -> str | None:
    """What a baseline kernel lacks: the reverted commit or the feature name."""
    m = BASELINE.match(kernel_name)
    return (m.group(1) or m.group(2)) if m else None


def _same(commit: str, label: str) -> bool:
    """A commit id matches by prefix either way; a name only exactly."""
    if _COMMIT.match(commit) and _COMMIT.match(label):
        return commit.startswith(label) or label.startswith(commit)
    return commit == label


@dataclass
class Cell:
    scenario: str
    kernel: str
    verdict: str
    wanted: str          # "pass", "fail", or "any" (explained elsewhere)
    reason: str

    @property
    def holds(self) -> bool:
        return self.wanted == "any" or self.verdict == self.wanted


def wanted(scn: Scenario, kernel: str) -> str:
    commit = reverted_commit(kernel)
    if commit is None:
        return PASS
    covered = [c for c in scn.covers if _same(commit, c)]
    if covered:
        return FAIL
    if any(_same(commit, c) for c in scn.also_fails_without):
        return "any"
    return PASS


def cells(results: list[ScenarioResult]) -> list[Cell]:
    return [Cell(r.scenario.name, r.kernel, r.verdict, wanted(r.scenario, r.kernel),
                 r.reason or "; ".join(f"{c.name}: {c.observed.splitlines()[0] if c.observed else ''}"
                                       for c in r.failures())[:300])
            for r in results]


def table(all_cells: list[Cell]) -> str:
    kernels = list(dict.fromkeys(c.kernel for c in all_cells))
    scenarios = list(dict.fromkeys(c.scenario for c in all_cells))
    by = {(c.scenario, c.kernel): c for c in all_cells}
    head = "| scenario | " + " | ".join(kernels) + " |"
    rule = "|---|" + "---|" * len(kernels)
    rows = []
    for s in scenarios:
        marks = []
        for k in kernels:
            c = by.get((s, k))
            if c is None:
                marks.append("")
                continue
            mark = c.verdict.upper()
            if not c.holds:
                mark += f" (want {c.wanted.upper()})"
            marks.append(mark)
        rows.append(f"| {s} | " + " | ".join(marks) + " |")
    return "\n".join([head, rule, *rows])


def write(all_cells: list[Cell], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "matrix.json").write_text(json.dumps([c.__dict__ | {"holds": c.holds} for c in all_cells], indent=2))
    holds = all(c.holds for c in all_cells)
    (out / "matrix.md").write_text(
        "# Detection matrix\n\n" + table(all_cells) + "\n\n" +
        ("The matrix holds.\n" if holds else "The matrix does NOT hold: see the cells marked 'want'.\n"))


def holds(all_cells: list[Cell]) -> bool:
    return all(c.holds for c in all_cells) and not any(c.verdict == SKIP and c.wanted == FAIL
                                                        for c in all_cells)
