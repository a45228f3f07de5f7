"""`rvharness bisect` and `bisect-run`: arguments to harness/bisect/. The
basename repeats the package's on purpose: commands/X.py is the command
for X/."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

from harness.bisect.bisector import DEFAULT_RECIPE, EXIT_ERROR, EXIT_FOUND, EXIT_INCONCLUSIVE, Bisector, BisectParams
from harness.commands.common import out_dir
from harness.core.errors import HarnessError, InputError
from harness.decide import bisect_step
from harness.expect.checks import FAIL
from harness.kernel import initramfs
from harness.kernel.gitbuild import GitTree, TreeBuilder, check_recipe_source
from harness.kernel.recipe import load_recipe
from harness.run import repeats
from harness.run.repeats import SuiteRun
from harness.scenario import parse as scenario


def cmd_bisect(args: argparse.Namespace) -> int:

    if args.resume:
        if args.tree or args.good or args.bad or args.scenarios:
            raise InputError(None, "--resume DIR takes the bisect's arguments from DIR/params.json; "
                                   "give no --tree, --good, --bad or scenarios with it")
        return main_bisect(None, Path(args.resume), resume=True)
    missing = [o for o, v in (("--tree", args.tree), ("--good", args.good), ("--bad", args.bad),
                              ("SCENARIO", args.scenarios)) if not v]
    if missing:
        raise InputError(None, f"bisect: missing {', '.join(missing)}")
    params = BisectParams(tree=args.tree, good=args.good, bad=args.bad, scenarios=args.scenarios,
                    recipe=args.kernel, checks=args.checks or [], confidence=args.confidence,
                    max_repeats=args.max_repeats, reverse=args.reverse, jobs=args.jobs or 1)
    return main_bisect(params, out_dir(args), resume=False)


def cmd_bisect_run(args: argparse.Namespace) -> int:

    return bisect_run(Path(args.tree), args.scenarios, args.kernel, args.checks or [], args.repeats,
                      out_dir(args))


def exit_code(result: dict) -> int:
    return {"found": EXIT_FOUND, "inconclusive": EXIT_INCONCLUSIVE}.get(result["status"], EXIT_ERROR)


def load_params(out: Path) -> BisectParams:
    f = out / "params.json"
    if not f.exists():
        raise InputError(out, "--resume: no params.json here (not a bisect output directory)")
    return BisectParams(**json.loads(f.read_text()))


def main_bisect(params: BisectParams | None, out: Path, resume: bool, say=None) -> int:
    if resume:
        params = load_params(out)
    assert params is not None
    b = Bisector(params, out, resume=resume, say=say)
    result = b.run()
    print(f"report: {out / 'bisect.md'}  json: {out / 'bisect.json'}  junit: {out / 'junit.xml'}")
    if result["status"] == "error":
        print(f"rvharness: error: {result.get('message', '')}", file=sys.stderr, flush=True)
    else:
        msg = result.get("message", "")
        if "p_culprit" in result and "P(" not in msg:
            msg += f" (P(culprit) = {result['p_culprit']:.3f})"
        print(f"bisect: {result['status']}: {msg}", flush=True)
    return exit_code(result)


# ------------------------------------------------------------------ bisect-run

# `git bisect run` exit codes.
RUN_GOOD, RUN_BAD, RUN_SKIP, RUN_ABORT = 0, 1, 125, 128


def run_against_signature(run: SuiteRun, checks: Sequence[str]) -> tuple[list[str], list[str]]:
    """(checks of the signature that FAILed, every other failure) of one run.
    The signature is the checks named by --checks (a name matches a check
    whose name is it or ends with ': ' and it), or, without --checks, every
    check. A named check that ended in ERROR (not evaluated: the kernel
    crashed or hung before it) does not show the signature by itself."""
    def named(c: str) -> bool:
        return not checks or any(c == n or c.endswith(": " + n) for n in checks)
    shown = sorted(c for c, v in run.checks.items() if v == FAIL and named(c))
    other = [c for c in run.failed if c not in shown]
    return shown, other


def bisect_run(tree_path: Path, scenarios: Sequence[str], recipe: str | None, checks: Sequence[str],
               repeats_n: int, out: Path, say=None, builder: TreeBuilder | None = None,
               run_once: Callable[..., SuiteRun] | None = None) -> int:
    """Test the tree's HEAD once (or repeats_n times) for `git bisect run`:
    0 good, 1 bad (the signature failed), 125 skip (no build, a recipe patch
    that does not apply, a scenario that cannot run, a failure outside the
    signature), 128 abort (bad input, infrastructure, a bug of the harness:
    cli.main maps those to 128 too, never 2, which git bisect takes for bad)."""
    say = say or (lambda m: print(m, file=sys.stderr, flush=True))
    try:
        tree = GitTree(tree_path)
        head = tree.rev("HEAD")
        rec = load_recipe(Path(recipe) if recipe else DEFAULT_RECIPE)
        check_recipe_source(rec, tree, explicit=recipe is not None)
        scns = [scenario.load(f) for f in scenario.discover([Path(s) for s in scenarios])]
        if repeats_n < 1:
            raise InputError(None, f"--repeats {repeats_n}: expected at least 1")
        built = (builder or TreeBuilder(tree, rec, progress=say)).build(head, out / "builds")
        if built.kernel is None:
            say(f"bisect-run: {head[:12]}: skip: {built.reason or built.status}")
            return RUN_SKIP
        initrd = initramfs.build(rec.arch) if run_once is None else Path(os.devnull)
        run_fn = run_once or repeats.run_once
        infra = 0
        i = 0
        while i < repeats_n:
            run = run_fn(scns, built.kernel, initrd, out / "runs", i + 1 + infra, label=head[:12])
            if run.infra:
                infra += 1
                if infra > bisect_step.INFRA_RETRIES:
                    say(f"bisect-run: {head[:12]}: abort: infrastructure failed twice: {run.infra}")
                    return RUN_ABORT
                continue
            i += 1
            if run.skipped:
                say(f"bisect-run: {head[:12]}: skip: {run.skipped}")
                return RUN_SKIP
            shown, other = run_against_signature(run, checks)
            if shown:
                say(f"bisect-run: {head[:12]}: bad: {'; '.join(shown)[:300]}")
                return RUN_BAD
            if other:
                # Something else broke (a crash, another check): this commit
                # says nothing about the signature, as git bisect skip.
                say(f"bisect-run: {head[:12]}: skip: failed outside the signature: {'; '.join(other)[:300]}")
                return RUN_SKIP
        say(f"bisect-run: {head[:12]}: good ({repeats_n} runs clean)")
        return RUN_GOOD
    except HarnessError as exc:
        print(f"rvharness: error: {exc}", file=sys.stderr)
        return RUN_ABORT
