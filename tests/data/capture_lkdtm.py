#!/usr/bin/env python3
"""Capture one golden console log per LKDTM crash type from real runs, on
each arch's default kernel: tests/data/console/lkdtm-<type>-<arch>.log.

Not a test (pytest does not collect it). For each crash type the kernel
lists in /sys/kernel/debug/provoke-crash/DIRECT it boots QEMU, writes the
type under `taskset -c 1`, waits until the console has been quiet for a few
seconds (at most --wait), and keeps the log only when the parsers find a
report besides LKDTM's own "Performing direct entry" line. The header's
`expect:` is left empty: fill it with `pytest tests/test_golden.py
--update-golden` and review it against the log.

    .venv/bin/python tests/data/capture_lkdtm.py --kernel kernels/arm64/default.yaml
    .venv/bin/python tests/data/capture_lkdtm.py --kernel kernels/default.yaml BUG WARNING
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from capture_console import build_id, write_golden  # noqa: E402

from harness.core.errors import HarnessError  # noqa: E402
from harness.guest.machine import Machine, MachineSpec  # noqa: E402
from harness.kernel import initramfs, kbuild  # noqa: E402
from harness.kernel.recipe import load_recipe  # noqa: E402
from harness.parsers import reports  # noqa: E402

DIRECT = "/sys/kernel/debug/provoke-crash/DIRECT"
# Short detector timeouts so that lockups and hung tasks report within the
# wait: soft lockup after 4 s, hard lockup after 2-5 s, hung task after 3 s.
CMDLINE = ("watchdog_thresh=2", "sysctl.kernel.hung_task_timeout_secs=3",
           "rcupdate.rcu_cpu_stall_timeout=120")
_TYPE = re.compile(r"^[A-Z][A-Z0-9_]+$")


def crash_types(recipe_path: Path, workdir: Path) -> list[str]:
    recipe = load_recipe(recipe_path)
    kernel = kbuild.build(recipe)
    spec = MachineSpec(kernel.arch, kernel.image, initramfs.build(kernel.arch), cpus=2,
                       cmdline=kernel.cmdline)
    with Machine(spec, workdir / "list") as m:
        m.boot()
        assert m.console is not None
        res = m.console.run(f"cat {DIRECT}", timeout=20)
    return [w for w in res.output.split() if _TYPE.match(w)]


def capture(recipe_path: Path, crash: str, workdir: Path, wait: float) -> tuple[str, dict]:
    recipe = load_recipe(recipe_path)
    kernel = kbuild.build(recipe)
    cmdline = kernel.cmdline + CMDLINE
    spec = MachineSpec(kernel.arch, kernel.image, initramfs.build(kernel.arch), cpus=4,
                       cmdline=cmdline)
    with Machine(spec, workdir / crash) as m:
        m.boot()
        c = m.console
        assert c is not None
        c.allowed_crashes = {"oops", "bug", "panic"}
        # Without kgdboc an oops is reported on the console instead of
        # entering kdb (whose pager would hold the rest of the report).
        c.run("echo > /sys/module/kgdboc/parameters/kgdboc", timeout=20)
        start = c.position
        try:
            c.begin(f"taskset -c 1 sh -c 'echo {crash} > {DIRECT}'")
            c.settle(quiet=4.0, limit=wait)
        except HarnessError as exc:
            print(f"  {crash}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
        log = c.text(start)
    source = {"kernel": None, "recipe": recipe.name, "arch": kernel.arch.name,
              "build": build_id(kernel.image), "cpus": 4, "cmdline": " ".join(cmdline)}
    return log, source


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("types", nargs="*", help="crash types (default: every type the kernel lists)")
    ap.add_argument("--kernel", type=Path, required=True, help="kernel recipe")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/capture-lkdtm"))
    ap.add_argument("--wait", type=float, default=25.0, help="longest wait per type, seconds")
    args = ap.parse_args()
    arch = load_recipe(args.kernel).arch.name
    types = args.types or crash_types(args.kernel, args.workdir)
    print(f"{len(types)} crash types: {' '.join(types)}")
    kept = 0
    for crash in types:
        t0 = time.monotonic()
        log, source = capture(args.kernel, crash, args.workdir, args.wait)
        found = [r for r in reports.parse(log) if r.type not in (reports.LKDTM, reports.LKDTM_FAIL)]
        took = time.monotonic() - t0
        if not found:
            print(f"{crash}: no report in {took:.0f} s, not kept")
            continue
        # Another recipe's log of the same type (a sanitizer kernel's KASAN
        # report for what the default kernel shows as an oops) gets its own name.
        tag = "" if source["recipe"] == "default" else f"-{source['recipe']}"
        name = f"lkdtm-{crash.lower().replace('_', '-')}-{arch}{tag}"
        path = write_golden(name, f"LKDTM {crash} on CPU 1 with kgdboc turned off, "
                                  f"{source['recipe']} kernel", source, log)
        kept += 1
        print(f"{crash}: {len(found)} reports ({found[0].title}), {took:.0f} s -> {path.name}")
    print(f"kept {kept} of {len(types)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
