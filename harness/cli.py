"""rvharness command line. Exit codes: 0 all passed, 1 a check failed,
2 usage or infrastructure error."""
from __future__ import annotations

import argparse
import datetime as dt
import re
import signal
import sys
from pathlib import Path
from typing import Sequence

from . import archskip, debs, hostcmd, initramfs, kbuild, preflight, scenario
from .arch import ARCHES
from .checks import ERROR, FAIL
from .errors import HarnessError, InputError
from .paths import REPO_ROOT
from .recipe import load_recipe

DEFAULT_RECIPE = REPO_ROOT / "kernels" / "default.yaml"
EXIT_OK, EXIT_FAIL, EXIT_ERROR = 0, 1, 2
# Every scenario was skipped: no check ran, so nothing passed (as pytest's 5).
EXIT_NOTHING_RAN = 5


def _progress(msg: str) -> None:
    print(f"rvharness: {msg}", file=sys.stderr, flush=True)


def _kernels(args: argparse.Namespace) -> list[kbuild.BuiltKernel]:
    patches = [Path(p) for p in args.patch]
    if args.kernel_image:
        if patches or args.kernel:
            raise InputError(None, "--kernel-image cannot be combined with --kernel or --patch")
        hostcmd.require_tool(ARCHES[args.arch].qemu)
        return [kbuild.prebuilt(Path(args.kernel_image), ARCHES[args.arch])]
    recipes = [load_recipe(Path(k)).with_patches(patches) for k in args.kernel or [DEFAULT_RECIPE]]
    for arch in dict.fromkeys(r.arch for r in recipes):
        hostcmd.require_tool(arch.qemu)            # fail before a long kernel build
    return [kbuild.build(r, progress=_progress) for r in recipes]


def _out_dir(args: argparse.Namespace) -> Path:
    if args.out:
        return Path(args.out)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("rvharness-out") / stamp


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", name)


def _run_all(scenarios: list[scenario.Scenario], kernels: list[kbuild.BuiltKernel], out: Path,
             junit_path: Path, model_only: bool = False, own_arch_only: bool = False) -> list:
    from . import report  # imports junit_xml, only needed here
    from .runner import run_scenario

    initrds = {a: initramfs.build(a) for a in dict.fromkeys(k.arch for k in kernels)}
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for kernel in kernels:
        initrd = initrds[kernel.arch]
        for scn in scenarios:
            if own_arch_only and archskip.reason(scn, kernel.arch.name):
                continue
            res = run_scenario(scn, kernel, initrd, out / _safe(kernel.recipe_name) / _safe(scn.name),
                               model_only=model_only)
            report.print_result(res, sys.stdout)
            sys.stdout.flush()
            results.append(res)
    junit_path.parent.mkdir(parents=True, exist_ok=True)
    junit_path.write_text(report.junit(results))
    report.write_summary(results, out / "summary.json")
    print(report.summary_line(results))
    print(f"artifacts: {out}  junit: {junit_path}")
    return results


def _load_scenarios(paths: list[str]) -> list[scenario.Scenario]:
    # All validated, names unique, before any QEMU starts.
    return preflight.load_scenarios([Path(p) for p in paths])


def cmd_run(args: argparse.Namespace) -> int:
    scenarios = _load_scenarios(args.paths)
    kernels = _kernels(args)
    out = _out_dir(args)
    results = _run_all(scenarios, kernels, out, Path(args.junit) if args.junit else out / "junit.xml",
                       model_only=args.model_only)
    return exit_code(results)


def exit_code(results: list) -> int:
    """2 when the harness could not judge something, 1 when a kernel failed
    a check, 5 when every scenario was skipped (no check ran), else 0."""
    from .checks import SKIP
    if any(r.verdict == ERROR for r in results):
        return EXIT_ERROR
    if any(r.verdict == FAIL for r in results):
        return EXIT_FAIL
    if results and all(r.verdict == SKIP for r in results):
        print("rvharness: every scenario was skipped: no check ran", file=sys.stderr)
        return EXIT_NOTHING_RAN
    return EXIT_OK


def cmd_matrix(args: argparse.Namespace) -> int:
    from . import matrix

    scenarios = [s for s in _load_scenarios(args.paths) if s.covers]
    recipes = [load_recipe(r) for r in matrix.recipe_paths(REPO_ROOT / "kernels", args.arch)]
    for arch in dict.fromkeys(r.arch for r in recipes):
        hostcmd.require_tool(arch.qemu)
    kernels = [kbuild.build(r, progress=_progress) for r in recipes]
    out = _out_dir(args)
    # Each scenario on the kernels of the arches it runs on (scenario skip_arch).
    results = _run_all(scenarios, kernels, out, out / "junit.xml", model_only=args.model_only,
                       own_arch_only=True)
    cells = matrix.cells(results)
    matrix.write(cells, out)
    print()
    print(matrix.table(cells))
    ok = matrix.holds(cells)
    print(f"matrix {'holds' if ok else 'does NOT hold'}: {out / 'matrix.md'}")
    return EXIT_OK if ok else EXIT_FAIL


def cmd_build(args: argparse.Namespace) -> int:
    recipe = load_recipe(Path(args.recipe)).with_patches([Path(p) for p in args.patch])
    built = kbuild.build(recipe, progress=_progress)
    print(built.image)
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    recipes = [Path(k) for k in args.kernel] or ([DEFAULT_RECIPE] if args.patch else [])
    for recipe in preflight.load_recipes(recipes, [Path(p) for p in args.patch]):
        print(f"ok    {recipe.path}: {recipe.name}, {len(recipe.patches)} patches")
    for scn in _load_scenarios(args.paths):
        print(f"ok    {scn.path}: {scn.name}, {len(scn.steps)} steps, {len(scn.expect)} expectations")
    return EXIT_OK


def cmd_explain(args: argparse.Namespace) -> int:
    from . import explain_arches

    scn = scenario.load(Path(args.scenario))
    cols = explain_arches.columns(scn, args.arch, args.without)
    print(f"{scn.path}: {scn.name}" + (f" (kernel without {', '.join(args.without)})" if args.without else ""))
    print(explain_arches.render(scn, cols))
    return EXIT_OK


def cmd_fetch(args: argparse.Namespace) -> int:
    wanted = [("linux-source-6.12", "all")] + [("busybox-static", a.deb_arch) for a in ARCHES.values()]
    for name, arch in wanted:
        pkg = debs.fetch(name, arch)
        print(f"{pkg.name}:{pkg.arch} {pkg.version} {pkg.path}")
    return EXIT_OK


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rvharness", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    def kernel_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--kernel", action="append", default=[], metavar="RECIPE",
                        help="kernel recipe YAML (repeatable; default kernels/default.yaml)")
        sp.add_argument("--kernel-image", metavar="IMAGE", help="a prebuilt kernel Image (see --arch)")
        sp.add_argument("--arch", choices=sorted(ARCHES), default="riscv64",
                        help="architecture of --kernel-image (default riscv64)")
        sp.add_argument("--patch", action="append", default=[], metavar="FILE",
                        help="extra patch applied on top of the recipe's (repeatable)")

    r = sub.add_parser("run", help="run scenarios on one or more kernels")
    r.add_argument("paths", nargs="+", help="scenario files or directories")
    kernel_opts(r)
    r.add_argument("--junit", metavar="FILE", help="JUnit XML path (default OUT/junit.xml)")
    r.add_argument("--out", metavar="DIR", help="artifact directory (default rvharness-out/<time>)")
    r.add_argument("--model-only", action="store_true",
                   help="judge by the reference model's claims alone (the scenarios' own expectations "
                        "are not evaluated)")
    r.set_defaults(func=cmd_run)

    b = sub.add_parser("build", help="build a kernel recipe and print the Image path")
    b.add_argument("recipe")
    b.add_argument("--patch", action="append", default=[], metavar="FILE")
    b.set_defaults(func=cmd_build)

    c = sub.add_parser("check", help="validate scenario files (and recipes, patches) without booting")
    c.add_argument("paths", nargs="+")
    c.add_argument("--kernel", action="append", default=[], metavar="RECIPE",
                   help="also validate this kernel recipe and its patches (repeatable)")
    c.add_argument("--patch", action="append", default=[], metavar="FILE",
                   help="also validate this extra patch, on top of each --kernel (repeatable)")
    c.set_defaults(func=cmd_check)

    mx = sub.add_parser("matrix", help="seed scenarios x patched and reverted kernels")
    mx.add_argument("paths", nargs="*", default=["scenarios/"])
    mx.add_argument("--out", metavar="DIR")
    mx.add_argument("--arch", action="append", choices=sorted(ARCHES), default=[],
                    help="only this arch's kernels (repeatable; default every arch)")
    mx.add_argument("--model-only", action="store_true",
                    help="judge every cell by the reference model's claims alone")
    mx.set_defaults(func=cmd_matrix)

    e = sub.add_parser("explain", help="print the reference model's predictions, step by step, without booting")
    e.add_argument("scenario")
    e.add_argument("--without", action="append", default=[], metavar="COMMIT",
                   help="predict for a kernel without this seed commit (repeatable; arm64: "
                        "pseudo-nmi-backtrace, or pseudo-nmi for the command-line baseline)")
    e.add_argument("--arch", action="append", choices=sorted(ARCHES), default=[],
                   help="only this arch (repeatable; default every arch the scenario runs on, "
                        "side by side)")
    e.set_defaults(func=cmd_explain)

    f = sub.add_parser("fetch", help="download the kernel source and every arch's busybox package")
    f.set_defaults(func=cmd_fetch)
    return p


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM (a CI timeout, pkill) unwinds like Ctrl-C, so every context
    # manager ends its QEMU and removes its private run directory.
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    # Python leaves SIGINT ignored when it starts ignored, as it does for a
    # background job of a non-interactive shell (measured: a CI script run
    # with `&` ignored Ctrl-C and sat in a 600 s step with QEMU alive).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if getattr(args, "out", "") is None:
        args.out = str(_out_dir(args))      # one artifact directory, named once
    try:
        return args.func(args)
    except HarnessError as exc:
        print(f"rvharness: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("rvharness: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - a harness bug: exit 2, never 1 (a kernel verdict)
        from . import internal_error
        out = Path(args.out) if getattr(args, "out", None) else None
        print(internal_error.record(exc, sys.argv[1:] if argv is None else list(argv), out),
              file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
