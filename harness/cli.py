"""rvharness command line. Exit codes: 0 all passed, 1 a check failed,
2 usage or infrastructure error."""
from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from harness.commands.bisect import RUN_ABORT, cmd_bisect, cmd_bisect_run
from harness.commands.build import cmd_build
from harness.commands.check import cmd_check
from harness.commands.common import out_dir
from harness.commands.explain import cmd_explain
from harness.commands.fetch import cmd_fetch
from harness.commands.matrix import cmd_matrix
from harness.commands.merge import cmd_merge
from harness.commands.parallel_run import resumed
from harness.commands.review import cmd_review
from harness.commands.run import cmd_run
from harness.commands.show import cmd_show
from harness.commands.worker import cmd_worker
from harness.core import internal_error
from harness.core.arch import ARCHES
from harness.core.errors import EXIT_ERROR, HarnessError
from harness.decide.compare import Design

if TYPE_CHECKING:
    pass


Subparsers = Any   # argparse's _SubParsersAction is private


def verbosity(sp: argparse.ArgumentParser) -> None:
    g = sp.add_mutually_exclusive_group()
    g.add_argument("-q", "--quiet", action="store_true", help="results and errors only")
    g.add_argument("-v", "--verbose", action="store_true", help="also one line per step")

def tree_opt(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--tree", metavar="DIR",
                    help="build this kernel working copy (uncommitted and untracked changes "
                         "included) out of tree with the recipe's config and patches")

def kernel_opts(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--kernel", action="append", default=[], metavar="RECIPE",
                    help="kernel recipe YAML (repeatable; default kernels/default.yaml)")
    sp.add_argument("--kernel-image", metavar="IMAGE", help="a prebuilt kernel Image (see --arch)")
    sp.add_argument("--arch", choices=sorted(ARCHES), default="riscv64",
                    help="architecture of --kernel-image (default riscv64)")
    sp.add_argument("--build-dir", metavar="DIR",
                    help="with --kernel-image: the directory it was built in (System.map, "
                         "vmlinux, .config)")
    sp.add_argument("--patch", action="append", default=[], metavar="FILE",
                    help="extra patch applied on top of the recipe's (repeatable)")
    tree_opt(sp)

def parallel_opts(sp: argparse.ArgumentParser) -> None:
    g = sp.add_argument_group("many VMs at once (docs/ci.md)")
    g.add_argument("-j", "--jobs", type=int, nargs="?", const=0, default=None, metavar="N",
                   help="N VMs at once in an in-process Dask LocalCluster (-j alone: from the "
                        "host's cores and the scenarios' vCPUs)")
    g.add_argument("--cluster", metavar="tcp://HOST:PORT", help="use this Dask scheduler's workers "
                   "(`rvharness worker`)")
    g.add_argument("--scheduler-file", metavar="FILE", help="the Dask scheduler named by this file")
    g.add_argument("--shard", metavar="K/N", help="run the K-th of N parts (whole kernels each); "
                   "'auto' reads GitLab's CI_NODE_INDEX/CI_NODE_TOTAL; `rvharness merge` joins them")
    g.add_argument("--resume", metavar="OUT", help="run only the cells of the run in OUT that have no "
                   "verdict (after a killed client or scheduler); its other arguments come from OUT")


def _add_run(sub: Subparsers) -> None:
    r = sub.add_parser("run", help="run scenarios on one or more kernels")
    r.add_argument("paths", nargs="*", help="scenario files or directories (default scenarios/)")
    kernel_opts(r)
    r.add_argument("-k", metavar="EXPR", help="only scenarios whose name, file or covers: match "
                                              "EXPR (words with and, or, not, as pytest -k)")
    r.add_argument("--list", action="store_true", help="show what would run and why the rest would not")
    r.add_argument("--follow", action="store_true", help="stream the guest console, one prefix per VM")
    r.add_argument("--junit", metavar="FILE", help="JUnit XML path (default OUT/junit.xml)")
    r.add_argument("--out", metavar="DIR", help="artifact directory (default rvharness-out/<time>)")
    r.add_argument("--model-only", action="store_true",
                   help="judge by the reference model's claims (the scenarios' own expectations "
                        "are not evaluated; a crash, hang or missed bring-up still fails)")
    r.add_argument("--flaky", choices=("pass", "fail"), default="pass",
                   help="exit status of a scenario that passed only on a retry (FLAKY; default pass: "
                        "exit 0, shown as FLAKY)")
    r.add_argument("--repeats", type=int, default=1, metavar="N",
                   help="run each scenario N times on each kernel, each from a fresh boot (default 1): "
                        "PASS if every run passed, FAIL if every run failed, FLAKY if mixed; each check's "
                        "failures k/N with an exact 95%% confidence interval of its failure rate, artifacts "
                        "in OUT/<kernel>/<scenario>/run-<i>/ (with -j, not with --shard or --resume; "
                        "docs/scenarios.md, Repeats)")
    parallel_opts(r)
    verbosity(r)
    r.set_defaults(func=cmd_run)


def _add_build(sub: Subparsers) -> None:
    b = sub.add_parser("build", help="build a kernel recipe and print the Image path")
    b.add_argument("recipe")
    b.add_argument("--patch", action="append", default=[], metavar="FILE")
    tree_opt(b)
    verbosity(b)
    b.set_defaults(func=cmd_build)


def _add_show(sub: Subparsers) -> None:
    sh = sub.add_parser("show", help="print the summary of an earlier run or matrix again")
    sh.add_argument("out", metavar="OUT", help="its artifact directory")
    sh.add_argument("--html", action="store_true", help="open its report.html")
    sh.set_defaults(func=cmd_show)


def _add_check(sub: Subparsers) -> None:
    c = sub.add_parser("check", help="validate scenario files (and recipes, patches) without booting")
    c.add_argument("paths", nargs="+")
    c.add_argument("--kernel", action="append", default=[], metavar="RECIPE",
                   help="also validate this kernel recipe and its patches (repeatable)")
    c.add_argument("--patch", action="append", default=[], metavar="FILE",
                   help="also validate this extra patch, on top of each --kernel (repeatable)")
    c.set_defaults(func=cmd_check)


def _add_matrix(sub: Subparsers) -> None:
    mx = sub.add_parser("matrix", help="seed scenarios x patched and reverted kernels")
    mx.add_argument("paths", nargs="*", default=["scenarios/"])
    mx.add_argument("--out", metavar="DIR")
    mx.add_argument("--arch", action="append", choices=sorted(ARCHES), default=[],
                    help="only this arch's kernels (repeatable; default every arch)")
    mx.add_argument("--model-only", action="store_true",
                    help="judge every cell by the reference model's claims alone")
    parallel_opts(mx)
    verbosity(mx)
    mx.set_defaults(func=cmd_matrix)


def _add_explain(sub: Subparsers) -> None:
    e = sub.add_parser("explain", help="print the reference model's predictions, step by step, without booting")
    e.add_argument("scenario")
    e.add_argument("--without", action="append", default=[], metavar="COMMIT",
                   help="predict for a kernel without this seed commit (repeatable; arm64: "
                        "pseudo-nmi-backtrace, or pseudo-nmi for the command-line baseline)")
    e.add_argument("--arch", action="append", choices=sorted(ARCHES), default=[],
                   help="only this arch (repeatable; default every arch the scenario runs on, "
                        "side by side)")
    e.set_defaults(func=cmd_explain)


def _add_bisect(sub: Subparsers) -> None:
    bs = sub.add_parser("bisect", help="find the commit that broke (or, --reverse, fixed) the scenarios",
                        description="exit 0: a verified culprit with P(culprit) >= --confidence; 1: "
                                    "inconclusive (the posterior's best commit and its P are printed); "
                                    "2: bad input, or a bisect that could not go on")
    bs.add_argument("scenarios", nargs="*", metavar="SCENARIO")
    bs.add_argument("--tree", metavar="DIR", help="the kernel git tree (never modified)")
    bs.add_argument("--good", metavar="REV")
    bs.add_argument("--bad", metavar="REV")
    bs.add_argument("--kernel", metavar="RECIPE",
                    help="base config, fragments and patches (default kernels/default.yaml without its source)")
    bs.add_argument("--checks", nargs="+", metavar="NAME", help="narrow the failure signature to these checks")
    bs.add_argument("--confidence", type=float, default=0.95, metavar="P",
                    help="the P(culprit) a 'found' needs: the posterior probability, from every run of "
                         "every commit, that the named commit is the first bad one (default 0.95)")
    bs.add_argument("--max-repeats", type=int, default=10, metavar="N",
                    help="runs of one commit at most in a search step and in the verification; the "
                         "posterior may ask 2 x N x (log2 of the range + 2) more runs in all (default 10)")
    bs.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                    help="boot up to N runs of one commit at once (in-process Dask LocalCluster)")
    bs.add_argument("--reverse", action="store_true",
                    help="find the commit that fixed it: --good fails, --bad passes")
    bs.add_argument("--out", metavar="DIR")
    bs.add_argument("--resume", metavar="DIR", help="continue a killed bisect from its output directory")
    bs.set_defaults(func=cmd_bisect)


def _add_bisect_run(sub: Subparsers) -> None:
    br = sub.add_parser("bisect-run", help="test HEAD of --tree with git-bisect-run exit codes "
                                           "(0 good, 1 bad, 125 skip, 128 abort)")
    br.add_argument("scenarios", nargs="+", metavar="SCENARIO")
    br.add_argument("--tree", default=".", metavar="DIR")
    br.add_argument("--kernel", metavar="RECIPE")
    br.add_argument("--checks", nargs="+", metavar="NAME")
    br.add_argument("--repeats", type=int, default=1, metavar="N")
    br.add_argument("--out", metavar="DIR")
    br.set_defaults(func=cmd_bisect_run)


def _add_review(sub: Subparsers) -> None:
    rv = sub.add_parser("review", help="test a patch series against its base, A/B in rounds, and say "
                                       "which patch changes what",
                        description="Runs the base (A) and base + series (B) in rounds: every scenario once a "
                                    "side, then 4 more runs a side of the scenarios whose checks are still "
                                    "undecided, up to --repeats. Each check is SAME, DIFFERENT or UNKNOWN by "
                                    "Fisher's exact test with Holm over the checks and alpha split over the "
                                    "rounds (docs/review.md).",
                        epilog="exit status: 0 SAME or better; 1 DIFFERENT for the worse (or the series does "
                               "not build); 2 bad input or a harness error; 3 UNKNOWN within the budget; "
                               "5 nothing ran")
    rv.add_argument("series", metavar="SERIES",
                    help="an mbox (git format-patch --stdout, b4 am, a whole thread), a directory of "
                         ".patch files, or BASE..TIP in --tree")
    rv.add_argument("scenarios", nargs="*", metavar="SCENARIO", help="scenario files or directories "
                                                                     "(default scenarios/)")
    rv.add_argument("--kernel", metavar="RECIPE",
                    help="the base: a recipe (default kernels/default.yaml); with --tree its config and patches")
    rv.add_argument("--tree", metavar="DIR", help="a kernel git tree (never modified); needs --base or a range")
    rv.add_argument("--base", metavar="REV", help="with --tree: the commit the series applies to")
    rv.add_argument("--repeats", type=int, default=Design.max_runs, metavar="N",
                    help=f"the budget: at most N runs a side of each scenario (default {Design.max_runs})")
    rv.add_argument("--alpha", type=float, default=Design.alpha, metavar="P",
                    help=f"family-wise false-positive rate over every check and round (default {Design.alpha})")
    rv.add_argument("--version", type=int, metavar="N",
                    help="the series version to test when the mbox holds several (default the newest)")
    rv.add_argument("--email", action="store_true", help="also write OUT/reply.eml, a reply to the cover letter")
    rv.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                    help="boot up to N scenarios of one run at once (in-process Dask LocalCluster)")
    rv.add_argument("--out", metavar="DIR")
    rv.set_defaults(func=cmd_review)


def _add_worker(sub: Subparsers) -> None:
    w = sub.add_parser("worker", help="a Dask worker for --cluster: VM slots and one kernel build at a time")
    w.add_argument("scheduler", nargs="?", metavar="tcp://HOST:PORT")
    w.add_argument("--scheduler-file", metavar="FILE")
    w.add_argument("--slots", type=int, default=max(1, (os.cpu_count() or 1)), metavar="N",
                   help="VMs at once on this worker (default: the host's cores)")
    w.add_argument("--name", help="the worker's name (default the host name); a worker sweeps what "
                                  "an earlier, dead worker of its name left")
    w.add_argument("--host", metavar="ADDR", help="address to listen on (e.g. 127.0.0.1)")
    w.set_defaults(func=cmd_worker)


def _add_merge(sub: Subparsers) -> None:
    mg = sub.add_parser("merge", help="merge the output directories of --shard runs into one")
    mg.add_argument("outs", nargs="+", metavar="OUT")
    mg.add_argument("--out", required=True, metavar="DIR")
    mg.set_defaults(func=cmd_merge)


def _add_fetch(sub: Subparsers) -> None:
    f = sub.add_parser("fetch", help="download the kernel source and every arch's busybox package")
    verbosity(f)
    f.set_defaults(func=cmd_fetch)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rvharness", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    for add in (_add_run, _add_build, _add_show, _add_check, _add_matrix, _add_explain, _add_bisect,
                _add_bisect_run, _add_review, _add_worker, _add_merge, _add_fetch):
        add(sub)
    return p


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM (a CI timeout, pkill) unwinds like Ctrl-C, so every context
    # manager ends its QEMU and removes its private run directory.
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["bisect-run"]:
        # git bisect run reads 1-124 and 126/127 as "bad": a usage error or a
        # bug of the harness must abort the bisect (128), never blame a commit.
        code = _main(words)
        return RUN_ABORT if code == EXIT_ERROR else code
    return _main(words)


def _main(words: list[str]) -> int:
    p = parser()
    try:
        args, rest = p.parse_known_args(words)
        if rest:
            # argparse gives a `*` positional after another positional only the
            # first run of words: `review SERIES --kernel R SCENARIO...` leaves
            # the scenarios over. They are the review's; anything else is an error.
            if getattr(args, "func", None) is cmd_review and not any(r.startswith("-") for r in rest):
                args.scenarios = [*args.scenarios, *rest]
            else:
                p.error(f"unrecognized arguments: {' '.join(rest)}")
    except SystemExit as exc:           # argparse: 2 on a usage error, 0 for --help
        return int(exc.code or 0)
    args._argv = words
    signal.signal(signal.SIGTERM, _terminate)
    # Python leaves SIGINT ignored when it starts ignored, as it does for a
    # background job of a non-interactive shell (measured: a CI script run
    # with `&` ignored Ctrl-C and sat in a 600 s step with QEMU alive).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if getattr(args, "out", "") is None:
        args.out = str(out_dir(args))      # one artifact directory, named once
    try:
        if args.command in ("run", "matrix") and args.resume:
            args = resumed(args, parser().parse_args)
        return args.func(args)
    except HarnessError as exc:
        print(f"rvharness: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("rvharness: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - a harness bug: exit 2, never 1 (a kernel verdict)
        out = Path(args.out) if getattr(args, "out", None) else None
        print(internal_error.record(exc, words, out), file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
