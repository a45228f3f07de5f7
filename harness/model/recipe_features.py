"""The model's kernel features from the kernel *recipe*: its arch, the
command line it boots with and the patches it applies (reverts). Nothing
here looks at what the kernel under test prints, so a kernel that loses a
feature it should have is caught instead of being modelled as such.

arm64's profile: pseudo-NMI IPIs need CONFIG_ARM64_PSEUDO_NMI, the seed's
mechanism (ipi_should_be_nmi(), reverted by revert-pseudo-nmi-backtrace)
and irqchip.gicv3_pseudo_nmi=1 (drivers/irqchip/irq-gic-v3.c
gic_enable_nmi_support() is skipped otherwise; the last value of a repeated
parameter wins, as in the kernel's early_param parsing)."""
from __future__ import annotations

from dataclasses import replace
from typing import Iterable, Mapping, Sequence

from .features import (ARM64, ARM64_PSEUDO_NMI, BACKTRACE_ROW, KGDB_ROW, RISCV64, SEED_BACKTRACE,
                       SEED_KGDB, ArchProfile, Features, _on, _param)

# Name of the arm64 seed's revert (kernels/arm64/patches/revert-<this>.patch;
# the matrix baseline arm64-revert-<this>), and of the command-line baseline.
ARM64_SEED = "pseudo-nmi-backtrace"
ARM64_NO_PSEUDO_NMI = "pseudo-nmi"
PSEUDO_NMI_PARAM = "irqchip.gicv3_pseudo_nmi"


def _lacks(reverted: Iterable[str], name: str) -> bool:
    return any(name in r.lower() for r in reverted)


def arch_profile(arch: str, cmdline: Sequence[str], reverted: Iterable[str] = (),
                 config: Mapping[str, str] | None = None) -> ArchProfile:
    reverted = list(reverted)
    if arch == "riscv64":
        if config is not None and _on(config, "CONFIG_HARDLOCKUP_DETECTOR_PERF"):
            return replace(RISCV64, hardlockup_detector="perf")
        return RISCV64
    if arch == "arm64":
        nmi = (_param(list(cmdline), PSEUDO_NMI_PARAM) == "1"
               and not _lacks(reverted, ARM64_SEED)
               and (config is None or _on(config, "CONFIG_ARM64_PSEUDO_NMI")))
        return ARM64_PSEUDO_NMI if nmi else ARM64
    raise ValueError(f"no model profile for arch '{arch}'")


def from_recipe(arch: str, cmdline: Sequence[str] | str, reverted: Iterable[str] = (),
                config: Mapping[str, str] | None = None) -> Features:
    """Features of a kernel built from a recipe of `arch` with `reverted`
    patches (their names or stems), booted with `cmdline`."""
    cmd = cmdline.split() if isinstance(cmdline, str) else list(cmdline)
    reverted = [r.lower() for r in reverted]
    profile = arch_profile(arch, cmd, reverted, config)
    if arch == "arm64":
        backtrace = not _lacks(reverted, ARM64_SEED)
        kgdb = True
    else:
        backtrace = not _lacks(reverted, SEED_BACKTRACE)
        kgdb = not _lacks(reverted, SEED_KGDB)
    rows = [r for r in profile.ipi_rows
            if (r != BACKTRACE_ROW or backtrace) and (r != KGDB_ROW or kgdb)]
    base = Features.from_kernel(rows, config, cmdline=cmd, reverted=reverted)
    return replace(base, arch=profile,
                   sbi_ipi_early=base.sbi_ipi_early if arch == "riscv64" else None,
                   softlockup_all_cpu_backtrace=_param(cmd, "softlockup_all_cpu_backtrace") == "1",
                   hardlockup_all_cpu_backtrace=_param(cmd, "hardlockup_all_cpu_backtrace") == "1")
