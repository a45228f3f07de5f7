"""rvharness review: check the input, build A and B, run them in rounds until
every check is decided (harness/review/ab.py), attribute, write the outputs,
and say the exit code: 0 SAME or better, 1 DIFFERENT for the worse, 2 bad
input or a base that does not build, 3 UNKNOWN within the budget."""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from harness.core.errors import HarnessError, InputError
from harness.core.paths import REPO_ROOT
from harness.decide import ab_counts
from harness.decide.compare import Design
from harness.kernel import initramfs, kbuild
from harness.kernel.gitbuild import GitTree, check_recipe_source
from harness.kernel.recipe import load_recipe
from harness.outputs import patchwork, review_junit, review_mail, review_md
from harness.review import ab, attribute, kernels
from harness.review import series as series_mod
from harness.review.record import Review, ReviewParams, Stats
from harness.run import repeats
from harness.scenario import archskip, preflight

DEFAULT_RECIPE = REPO_ROOT / "kernels" / "default.yaml"
EXIT_OK, EXIT_NEW, EXIT_ERROR, EXIT_UNKNOWN = 0, 1, 2, 3


class BaseBroken(HarnessError):
    """The base does not build: nothing can be said about the series (exit 2)."""


@dataclass
class Plan:
    """Everything checked before the first build."""
    series: series_mod.Series
    builder: kernels.Builder
    recipe_arch: str
    scenarios: list
    files: list[Path]


def _config_hash(kernel: kbuild.BuiltKernel) -> str:
    cfg = kernel.dir / ".config"
    return hashlib.sha256(cfg.read_bytes()).hexdigest()[:12] if cfg.exists() else "unknown"


def plan(params: ReviewParams, out: Path, say: Callable[[str], None]) -> Plan:
    if params.repeats < 2:
        raise InputError(None, f"--repeats {params.repeats}: expected at least 2 (runs a side per scenario, "
                               "the budget; a side with fewer judged runs is UNKNOWN)")
    if not 0 < params.alpha < 1:
        raise InputError(None, f"--alpha {params.alpha}: expected a false-positive rate between 0 and 1")
    if params.jobs < 1:
        raise InputError(None, f"-j {params.jobs}: expected at least 1")
    recipe = load_recipe(Path(params.kernel) if params.kernel else DEFAULT_RECIPE)
    work = out / "series"
    tree = None
    base = params.base
    if params.tree:
        tree = GitTree(Path(params.tree))
        check_recipe_source(recipe, tree, explicit=params.kernel is not None)
        if not Path(params.series).exists() and ".." in params.series:
            ser, rng_base = series_mod.from_range(tree.path, params.series, work / "mails")
            if base and tree.rev(base, "--base") != tree.rev(rng_base, "the range's base"):
                raise InputError(None, f"--base {base} is not the range's base {rng_base}")
            base = rng_base
        else:
            ser = series_mod.load(Path(params.series), params.version)
        if not base:
            raise InputError(None, "--tree needs --base REV (the commit the series applies to), "
                                   "or a range BASE..TIP as SERIES")
    else:
        if params.base:
            raise InputError(None, "--base REV needs --tree DIR (with --kernel the recipe is the base)")
        if ".." in params.series and not Path(params.series).exists():
            raise InputError(params.series, "no such file or directory (a range BASE..TIP needs --tree DIR)")
        ser = series_mod.load(Path(params.series), params.version)
    if ser.note:
        say(ser.note)
    files = series_mod.write_patches(ser, work / "patches")
    logs = out / "builds"
    if tree is not None:
        base_sha = tree.rev(base, "--base")
        kernels.check_applies(ser, recipe.patches, files, kernels.base_file_from_git(tree, base_sha))
        builder: kernels.Builder = kernels.TreeBaseBuilder(tree, base_sha, recipe, files, logs, say)
    else:
        root = kbuild.resolve_source(recipe.source).root
        kernels.check_applies(ser, recipe.patches, files, kernels.base_file_from_source(root))
        builder = kernels.RecipeBuilder(recipe, files, logs, say)
    scenarios = preflight.load_scenarios([Path(s) for s in params.scenarios] or [REPO_ROOT / "scenarios"])
    mine = [s for s in scenarios if not archskip.reason(s, recipe.arch.name)]
    if not mine:
        raise InputError(None, f"no scenario runs on {recipe.arch.name}")
    return Plan(ser, builder, recipe.arch.name, mine, files)


def review(params: ReviewParams, out: Path, say: Callable[[str], None] = print,
           run_once: Callable[..., repeats.SuiteRun] | None = None) -> Review:
    """The whole review; run_once replaces the real runs (unit tests)."""
    t0 = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    p = plan(params, out, say)
    ser, builder = p.series, p.builder
    n = len(ser.patches)
    stats = Stats()
    say(f"reviewing '{ser.subject}' v{ser.version}: {n} patch{'es' * (n != 1)} on {builder.base_text()}")

    def build(k: int, role: str) -> kernels.Built:
        if role in stats.builds:                 # asked again by another change: the builder remembers
            return builder.build(k)
        say(f"building {role}…")
        res = builder.build(k)
        stats.builds[role] = "cached" if res.cached else ("built" if res.kernel else "failed")
        if not res.cached:
            stats.build_seconds += res.seconds
        return res

    a = build(0, "base")
    if a.kernel is None:
        raise BaseBroken(f"the base does not build ({builder.base_text()}): {a.reason}")
    b = build(n, "tip")
    compiler = kbuild.toolchain(builder.recipe.arch)
    run = run_once or functools.partial(repeats.run_once, jobs=params.jobs)
    counted = _counting(run, stats)
    if b.kernel is None:
        # The series breaks the build: find the first patch that does.
        k, asked = attribute.first_showing(n, lambda k: (build(k, f"1..{k}").kernel is None) if k < n else True)
        stats.prefixes_asked = asked
        rv = Review(params, ser, out, builder.base_text(), p.recipe_arch, compiler, _config_hash(a.kernel), "-",
                    [s.name for s in p.scenarios], ab.Comparison(), stats,
                    build_break=(k or n, builder.build(k or n).reason))
        stats.wall_seconds = time.monotonic() - t0
        return rv
    initrd = initramfs.build(builder.recipe.arch) if run_once is None else Path("/dev/null")
    design = Design(alpha=params.alpha, max_runs=params.repeats)
    ca, cb, cmp = ab.rounds(p.scenarios, a.kernel, b.kernel, initrd, out / "runs", design,
                            _round_runner(run_once, params.jobs, stats), say)
    # Nothing to compare: every run broke outside the kernel (QEMU, QMP, the host).
    if not cmp.a_judged:
        raise BaseBroken(f"no run of the base said anything about the kernel: {cmp.a_infra[0] if cmp.a_infra else '?'}"
                         f" (artifacts: {out / 'runs' / 'A'})")
    if not cmp.b_judged:
        raise HarnessError(f"no run with the series said anything about the kernel: "
                           f"{cmp.b_infra[0] if cmp.b_infra else '?'} (artifacts: {out / 'runs' / 'B'})")
    judge = attribute.PrefixJudge(builder=_RoleBuilder(builder, build), scenarios=p.scenarios, initrd=initrd,
                                  out=out / "runs", run_once=counted, say=say)
    if n > 1 and (cmp.of(ab_counts.NEW, ab_counts.FIXED) or cmp.new_titles):
        say("attributing each change to a patch (bisecting the prefixes)…")
    stats.prefixes_asked = attribute.attribute(cmp, n, judge if n > 1 else None, design.max_runs)
    (out / "runs.json").write_text(json.dumps({"A": [r.to_json() for r in ca.runs],
                                               "B": [r.to_json() for r in cb.runs],
                                               "prefixes": {f"{k}:{s}": [r.to_json() for r in rs]
                                                            for (k, s), rs in judge.runs.items()}}, indent=1))
    stats.wall_seconds = time.monotonic() - t0
    return Review(params, ser, out, builder.base_text(), p.recipe_arch, compiler, _config_hash(a.kernel),
                  _config_hash(b.kernel), [s.name for s in p.scenarios], cmp, stats)


class _RoleBuilder:
    """The builder as the attribution sees it, counted in the stats."""

    def __init__(self, builder: kernels.Builder, build: Callable[[int, str], kernels.Built]) -> None:
        self.recipe = builder.recipe
        self._build = build
        self._inner = builder

    def build(self, k: int) -> kernels.Built:
        return self._build(k, f"1..{k}")

    def base_text(self) -> str:
        return self._inner.base_text()


def _round_runner(run_once: Callable[..., repeats.SuiteRun] | None, jobs: int, stats: Stats) -> ab.RunRound:
    """One round on one kernel: with -j N every run of it side by side in
    one Dask LocalCluster (repeats.run_many), else one run after another."""
    def run_round(scenarios, kernel, initrd, out, indices, label) -> list[repeats.SuiteRun]:
        t = time.monotonic()
        if run_once is None and jobs > 1:
            runs = repeats.run_many(scenarios, kernel, initrd, out, indices, label, jobs)
        else:
            one = run_once or repeats.run_once
            runs = [one(scenarios, kernel, initrd, out, i, label=label) for i in indices]
        stats.boots += len(scenarios) * len(indices)
        stats.boot_seconds += time.monotonic() - t
        return runs
    return run_round


def _counting(run: Callable[..., repeats.SuiteRun], stats: Stats) -> Callable[..., repeats.SuiteRun]:
    def counted(scenarios, *args, **kwargs) -> repeats.SuiteRun:
        t = time.monotonic()
        r = run(scenarios, *args, **kwargs)
        stats.boots += len(scenarios)
        stats.boot_seconds += time.monotonic() - t
        return r
    return counted


def write_outputs(rv: Review) -> list[Path]:
    out = rv.out
    written = [out / "review.json", out / "review.md", out / "junit.xml"]
    (out / "review.json").write_text(json.dumps(rv.to_json(), indent=2))
    (out / "review.md").write_text(review_md.render(rv))
    (out / "junit.xml").write_text(review_junit.render(rv))
    written += patchwork.write(rv, out / "patchwork")
    if rv.params.email:
        (out / "reply.eml").write_bytes(review_mail.render(rv))
        written.append(out / "reply.eml")
    return written


def main(params: ReviewParams, out: Path, say: Callable[[str], None] = print) -> int:
    rv = review(params, out, say)
    write_outputs(rv)
    d = rv.cmp.design
    print(f"{rv.verdict}: {rv.headline()} (family-wise alpha {d.alpha:g} over every check and round; "
          f"{rv.stats.boots} boots; exit {rv.exit_code})")
    print(f"review: {out / 'review.md'}")
    return rv.exit_code


def cmd_review(args: argparse.Namespace) -> int:

    params = ReviewParams(series=args.series, scenarios=tuple(args.scenarios), kernel=args.kernel, tree=args.tree,
                    base=args.base, repeats=args.repeats, alpha=args.alpha, version=args.version,
                    email=args.email, jobs=args.jobs)
    return main(params, Path(args.out))
