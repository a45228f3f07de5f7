"""`rvharness explain` for several arches at once: the model's predictions
for one scenario on each arch's default kernel (or a baseline), side by
side. Each arch's features are the reference its recipe declares
(Features.reference: arch, the command line the harness and the recipe
give, `model: {without: ...}`), plus what --without names."""
from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path

from harness.core.arch import ARCHES
from harness.core.errors import EXIT_OK, InputError
from harness.guest.machine import MachineSpec
from harness.model.features import SEED_ARM64_BACKTRACE as ARM64_SEED
from harness.model.features import Features
from harness.model.narrate import explain
from harness.scenario import archskip
from harness.scenario import parse as scenario

# --without pseudo-nmi: the command-line baseline (kernels/arm64/without-pseudo-nmi.yaml)
ARM64_NO_PSEUDO_NMI = "pseudo-nmi"
PSEUDO_NMI_PARAM = "irqchip.gicv3_pseudo_nmi"
from harness.core.paths import REPO_ROOT
from harness.kernel.recipe import load_recipe
from harness.scenario.types import Scenario

DEFAULT_RECIPES = {"riscv64": REPO_ROOT / "kernels" / "default.yaml",
                   "arm64": REPO_ROOT / "kernels" / "arm64" / "default.yaml"}
_COMMIT = re.compile(r"^[0-9a-f]{7,40}$")


@dataclass(frozen=True)
class Column:
    arch: str
    title: str
    features: Features


def _arch_of(without: str) -> str:
    if _COMMIT.match(without):
        return "riscv64"          # the RISC-V seed commits
    if without in (ARM64_SEED, ARM64_NO_PSEUDO_NMI):
        return "arm64"
    raise InputError(None, f"--without {without}: expected a RISC-V seed commit id or one of "
                           f"{ARM64_SEED}, {ARM64_NO_PSEUDO_NMI} (arm64)")


def columns(scn: Scenario, arches: list[str], without: list[str]) -> list[Column]:
    by_arch: dict[str, list[str]] = {}
    for w in without:
        by_arch.setdefault(_arch_of(w), []).append(w)
    if not arches:
        arches = [a for a in ARCHES if not archskip.reason(scn, a)]
        if by_arch:
            arches = [a for a in arches if a in by_arch]
    out = []
    for arch in arches:
        if (why := archskip.reason(scn, arch)):
            raise InputError(scn.path, why)
        recipe = load_recipe(DEFAULT_RECIPES[arch])
        gone = by_arch.get(arch, [])
        cmdline = list(recipe.cmdline)
        if ARM64_NO_PSEUDO_NMI in gone:
            cmdline.append(f"{PSEUDO_NMI_PARAM}=0")
        spec = MachineSpec(ARCHES[arch], Path("Image"), Path("initrd"), cpus=scn.machine.cpus,
                           cmdline=tuple(cmdline) + scn.machine.cmdline)
        without = list(recipe.model_without) + [w for w in gone if w != ARM64_NO_PSEUDO_NMI]
        try:
            features = Features.reference(None, arch=arch, cmdline=spec.kernel_cmdline(), without=without)
        except ValueError as exc:
            raise InputError("--without", str(exc)) from None
        title = f"{arch}: {recipe.name}" + (f" without {', '.join(gone)}" if gone else "")
        out.append(Column(arch, title, features))
    return out


def render(scn: Scenario, cols: list[Column]) -> str:
    texts = [[f"== {c.title} ==", *explain(scn.steps, c.features, scn.machine.cpus).splitlines()]
             for c in cols]
    if len(texts) == 1:
        return "\n".join(texts[0]) + "\n"
    widths = [max(len(line) for line in t) for t in texts[:-1]]
    rows = []
    for parts in zip_longest(*texts, fillvalue=""):
        cells = [p.ljust(w) for p, w in zip(parts[:-1], widths)] + [parts[-1]]
        rows.append(" | ".join(cells).rstrip())
    return "\n".join(rows) + "\n"


def cmd_explain(args: argparse.Namespace) -> int:

    scn = scenario.load(Path(args.scenario))
    cols = columns(scn, args.arch, args.without)
    print(f"{scn.path}: {scn.name}" + (f" (kernel without {', '.join(args.without)})" if args.without else ""))
    print(render(scn, cols))
    return EXIT_OK
