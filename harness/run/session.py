"""One command's work from scenarios and kernels to artifacts: choosing
the kernels (recipes, --patch, --tree, --kernel-image), running every
scenario on each with live progress (and --follow), and writing
summary.json, junit.xml and report.html."""
from __future__ import annotations

import sys
from pathlib import Path

from harness.core import hostcmd
from harness.core.arch import ARCHES
from harness.core.errors import InputError
from harness.core.names import safe
from harness.core.paths import REPO_ROOT
from harness.display.follow import following
from harness.display.progress import Display, RunStatus
from harness.expect.result import ScenarioResult
from harness.kernel import initramfs, kbuild, kernelimage, usertree
from harness.kernel.recipe import Recipe, load_recipe
from harness.outputs import lines as terminal
from harness.outputs import results as results_out
from harness.outputs import write_all
from harness.run import attempts
from harness.run.runner import run_scenario
from harness.scenario import archskip
from harness.scenario.types import Scenario

DEFAULT_RECIPE = REPO_ROOT / "kernels" / "default.yaml"


def recipes(kernel: list[str], patch: list[str], tree: str | None) -> list[Recipe]:
    patches = [Path(p) for p in patch]
    chosen = [load_recipe(Path(k)).with_patches(patches) for k in kernel or [str(DEFAULT_RECIPE)]]
    if tree is not None:
        chosen = [usertree.with_tree(r, Path(tree)) for r in chosen]
    return chosen


def kernel_sources(args, display: Display) -> list[Recipe | kbuild.BuiltKernel]:
    """What the command runs on, not yet built: the recipes (with --patch,
    --tree), or the one prebuilt --kernel-image."""
    if args.kernel_image:
        if args.patch or args.kernel or getattr(args, "tree", None):
            raise InputError(None, "--kernel-image cannot be combined with --kernel, --patch or --tree")
        hostcmd.require_tool(ARCHES[args.arch].qemu)
        built, found = kernelimage.prebuilt(Path(args.kernel_image), ARCHES[args.arch],
                                            Path(args.build_dir) if args.build_dir else None)
        missing = [n for n in kernelimage.FOUND if n not in found]
        display.say(f"kernel {args.kernel_image}: " + ", ".join(f"{n} {p}" for n, p in found.items())
                    + (f"; not found: {', '.join(missing)}" if missing else ""))
        return [built]
    if getattr(args, "build_dir", None):
        raise InputError(None, "--build-dir goes with --kernel-image")
    chosen = recipes(args.kernel, args.patch, getattr(args, "tree", None))
    for arch in dict.fromkeys(r.arch for r in chosen):
        hostcmd.require_tool(arch.qemu)            # fail before a long kernel build
    return chosen


def kernels(args, display: Display) -> list[kbuild.BuiltKernel]:
    return [k if isinstance(k, kbuild.BuiltKernel) else kbuild.build(k, progress=display.say, monitor=display)
            for k in kernel_sources(args, display)]


def run_all(scenarios: list[Scenario], built: list[kbuild.BuiltKernel], out: Path,
            junit_path: Path, display: Display, follow: bool = False,
            model_only: bool = False, own_arch_only: bool = False, repeats: int = 1) -> list:
    """own_arch_only: leave out (not even as skips) the scenarios that do
    not run on a kernel's arch (the matrix: each scenario on its arches).
    repeats: each scenario that many times on each kernel, one result for
    them all (harness/run/attempts.py); 1 runs it once, as always."""

    initrds = {a: initramfs.build(a) for a in dict.fromkeys(k.arch for k in built)}
    out.mkdir(parents=True, exist_ok=True)
    results = []
    with display.running(len(scenarios) * len(built) * repeats) as status:
        for kernel in built:
            initrd = initrds[kernel.arch]
            for scn in scenarios:
                if own_arch_only and archskip.reason(scn, kernel.arch.name):
                    continue
                art = out / safe(kernel.recipe_name) / safe(scn.name)
                if repeats == 1:
                    res = _run_one(scn, kernel, initrd, art, status, follow, model_only, scn.name)
                else:
                    tries = [_run_one(scn, kernel, initrd, attempts.attempt_dir(art, i), status, follow,
                                      model_only, f"{scn.name} run {i}/{repeats}") for i in range(1, repeats + 1)]
                    res = attempts.combine(scn, kernel.recipe_name, art, tries)
                terminal.print_result(res, sys.stdout)
                sys.stdout.flush()
                results.append(res)
    finish(results, out, junit_path)
    return results


def _run_one(scn: Scenario, kernel: kbuild.BuiltKernel, initrd: Path, art: Path, status: RunStatus, follow: bool,
             model_only: bool, label: str) -> ScenarioResult:
    """One boot of scn into art, shown live as label."""
    status.start(kernel.recipe_name, label)
    with following(art / "console.log" if follow else None, f"{kernel.recipe_name}/{label}"):
        res = run_scenario(scn, kernel, initrd, art, model_only=model_only, on_step=status.on_step)
    status.end()
    return res


def finish(results: list, out: Path, junit_path: Path) -> None:
    """summary.json, junit.xml, report.html and the summary line, from the
    results in the serial order (serial and parallel runs alike)."""
    results_out.write_summary(results, out / results_out.SUMMARY)
    write_all(out, junit_path)
    print(terminal.summary_line(results))
    print(f"artifacts: {out}  report: {out / 'report.html'}  junit: {junit_path}")
