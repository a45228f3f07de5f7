"""The detection matrix: seed scenarios x (patched kernel, each baseline
kernel). A baseline is named revert-<commit> (the commit reverted) or
without-<feature> (a change taken out by a patch that is not a plain
revert). A scenario must pass on the patched kernel and fail on the
baseline of something it covers; any other change is a surprise unless the
scenario names it in `also_fails_without`, with the checks that fail and
why: then the cell holds only if it passes or exactly those checks fail.
Each cell also carries the reference model's verdict: it must agree with
the patched kernel and disagree with the baseline of what the scenario
covers.

Both arches: kernels/ holds riscv64's recipes, kernels/arm64/ arm64's
(named arm64-default, arm64-revert-<what>, arm64-without-<what>). A revert
is named by its commit (prefix-matched against `covers`) or, when the
reverted change has no commit id in the seed, by a name matched exactly.
Each scenario runs on the kernels of the arches it does not skip."""
from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from pathlib import Path

from harness.commands import parallel_run as parallel
from harness.commands.common import display_for, load_scenarios, out_dir
from harness.core import hostcmd
from harness.core.errors import EXIT_FAIL, EXIT_OK
from harness.core.paths import REPO_ROOT
from harness.expect.checks import ERROR, EXPECTATION, FAIL, FLAKY, MODEL, NOT_COMPARED, PASS, SKIP
from harness.expect.result import ScenarioResult
from harness.kernel import kbuild
from harness.kernel.recipe import load_recipe
from harness.outputs import write_all
from harness.run import session
from harness.scenario.types import Scenario

BASELINE = re.compile(r"^(?:[a-z0-9]+-)?(?:revert-([0-9a-f]{12,40}|[a-z][a-z0-9-]*)|without-([a-z0-9-]+))$")
BASELINE_GLOBS = ("revert-*.yaml", "without-*.yaml")
# The directory of each arch's recipes, relative to kernels/.
KERNEL_DIRS = {"riscv64": ".", "arm64": "arm64"}
# Baselines whose difference the recipe itself tells the reference model
# (kernels/arm64/without-pseudo-nmi.yaml: irqchip.gicv3_pseudo_nmi=0 on its
# cmdline): the model predicts that kernel, so it must agree with it.
DECLARED_TO_MODEL = ("pseudo-nmi",)
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
class MatrixCell:
    scenario: str
    kernel: str
    verdict: str         # the scenario's own expectations (and the implicit checks)
    wanted: str          # "pass", "fail", or "named" (may fail, through exactly `named` only)
    reason: str
    failed: tuple[str, ...] = ()      # expectation checks that failed
    named: tuple[str, ...] = ()       # also_fails_without's checks for this kernel
    model: str = "none"               # the reference model's claims alone: pass, fail or none
    model_wanted: str = "any"
    model_only: bool = False          # the expectations were not evaluated (matrix --model-only)

    @property
    def holds(self) -> bool:
        if self.model_only:
            return self.model_holds
        if self.wanted == "named":
            ok = self.verdict in (PASS, FLAKY) or (self.verdict == FAIL and set(self.failed) == set(self.named))
        else:
            ok = self.verdict == self.wanted or (self.wanted == PASS and self.verdict == FLAKY)
        return ok and self.model_holds

    @property
    def model_holds(self) -> bool:
        return self.model_wanted == "any" or self.model == self.model_wanted


def wanted(scn: Scenario, kernel: str) -> tuple[str, tuple[str, ...]]:
    commit = reverted_commit(kernel)
    if commit is None:
        return PASS, ()
    if any(_same(commit, c) for c in scn.covers):
        return FAIL, ()
    for c, (checks, _why) in scn.also_fails_without.items():
        if _same(commit, c):
            return "named", checks
    return PASS, ()


def model_wanted(scn: Scenario, kernel: str) -> str:
    """The model predicts the reference kernel: it must agree with the
    default kernel and disagree with the baseline of what the scenario
    covers. Elsewhere it may disagree (the baseline lacks a feature the
    model expects everywhere, e.g. the backtrace row)."""
    commit = reverted_commit(kernel)
    if commit is None or commit in DECLARED_TO_MODEL:
        return PASS
    return FAIL if any(_same(commit, c) for c in scn.covers) else "any"


def _model_verdict(r: ScenarioResult) -> str:
    judged = [c for c in r.checks if c.origin == MODEL and c.verdict not in (NOT_COMPARED, SKIP)]
    if not judged:
        return "none"
    return FAIL if any(c.verdict in (FAIL, ERROR) for c in judged) else PASS


def _expectation_verdict(r: ScenarioResult) -> str:
    """The verdict of the scenario's own expectations and implicit checks
    alone: the model's claims have their own column (a baseline may well
    disagree with the model without failing what the scenario asks)."""
    if r.verdict == SKIP:
        return SKIP
    own = [c for c in r.checks if c.origin == EXPECTATION and c.verdict != NOT_COMPARED]
    if any(c.verdict == FAIL for c in own):
        return FAIL
    if any(c.verdict == ERROR for c in own) or (r.verdict == ERROR and not own):
        return ERROR
    return PASS


def cells(results: list[ScenarioResult]) -> list[MatrixCell]:
    out = []
    for r in results:
        want, named = wanted(r.scenario, r.kernel)
        failed = tuple(c.name for c in r.checks if c.origin == EXPECTATION and c.verdict == FAIL)
        out.append(MatrixCell(r.scenario.name, r.kernel, _expectation_verdict(r), want,
                        r.reason or "; ".join(f"{c.name}: {c.observed.splitlines()[0] if c.observed else ''}"
                                              for c in r.failures())[:300],
                        failed, named, _model_verdict(r), model_wanted(r.scenario, r.kernel), r.model_only))
    return out


def table(all_cells: list[MatrixCell]) -> str:
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
            if c.model_only:
                mark = f"model {c.model.upper()}" + ("" if c.model_holds else f" (want {c.model_wanted.upper()})")
                marks.append(mark)
                continue
            mark = c.verdict.upper()
            if c.wanted == "named" and c.verdict == FAIL and set(c.failed) != set(c.named):
                mark += f" (want only {', '.join(c.named)} to fail)"
            elif c.wanted != "named" and c.verdict != c.wanted:
                mark += f" (want {c.wanted.upper()})"
            mark += f" / model {c.model.upper()}"
            if not c.model_holds:
                mark += f" (want {c.model_wanted.upper()})"
            marks.append(mark)
        rows.append(f"| {s} | " + " | ".join(marks) + " |")
    return "\n".join([head, rule, *rows])


def write(all_cells: list[MatrixCell], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "matrix.json").write_text(json.dumps([c.__dict__ | {"holds": c.holds, "model_holds": c.model_holds}
                                                 for c in all_cells], indent=2))
    holds = all(c.holds for c in all_cells)
    (out / "matrix.md").write_text(
        "# Detection matrix\n\n" + table(all_cells) + "\n\n" +
        ("The matrix holds.\n" if holds else "The matrix does NOT hold: see the cells marked 'want'.\n"))


def holds(all_cells: list[MatrixCell]) -> bool:
    return all(c.holds for c in all_cells) and not any(c.verdict == SKIP and c.wanted == FAIL
                                                        for c in all_cells)


def cmd_matrix(args: argparse.Namespace) -> int:

    scenarios = [s for s in load_scenarios(args.paths) if s.covers]
    display = display_for(args)
    recipes = [load_recipe(r) for r in recipe_paths(REPO_ROOT / "kernels", args.arch)]
    for arch in dict.fromkeys(r.arch for r in recipes):
        hostcmd.require_tool(arch.qemu)
    out = out_dir(args)
    if parallel.wanted(args):
        results = parallel.execute(args, "matrix", scenarios, list(recipes), True, out, out / "junit.xml",
                                   display)
    else:
        kernels = [kbuild.build(r, progress=display.say, monitor=display) for r in recipes]
        # Each scenario on the kernels of the arches it runs on (scenario skip_arch).
        results = session.run_all(scenarios, kernels, out, out / "junit.xml", display,
                                  model_only=args.model_only, own_arch_only=True)
    return finish_matrix(results, out)


def finish_matrix(results: list, out: Path) -> int:

    found = cells(results)
    write(found, out)
    write_all(out, out / "junit.xml")     # again, now with the matrix table in report.html
    print()
    print(table(found))
    ok = holds(found)
    print(f"matrix {'holds' if ok else 'does NOT hold'}: {out / 'matrix.md'}")
    return EXIT_OK if ok else EXIT_FAIL
