"""Which architectures a scenario runs on. A scenario that cannot run on an
arch says why under `skip_arch:` (arch name -> reason); on a kernel of that
arch the runner reports SKIP with that reason, and `rvharness matrix` leaves
the pair out (each scenario runs on the kernels of its arches)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.core.arch import ARCHES
from harness.core.yamlfile import Fields


def parse(path: Path, f: Fields) -> dict[str, str]:
    """The scenario's `skip_arch:` mapping, validated."""
    if "skip_arch" not in f.value:
        return {}
    sf = Fields(path, f.value["skip_arch"], "skip_arch", f.at("skip_arch"))
    out: dict[str, str] = {}
    for name in sf.value:
        if name not in ARCHES:
            raise sf.at(str(name)).error(f"unknown arch '{name}' (expected one of: {', '.join(ARCHES)})")
        reason = sf.get(name, str)
        if not reason or not reason.strip():
            raise sf.at(name).error("give the reason the scenario cannot run on this arch")
        out[name] = " ".join(reason.split())
    if len(out) == len(ARCHES):
        raise f.at("skip_arch").error("the scenario is skipped on every arch")
    return out


def reason(scn: Any, arch_name: str) -> str | None:
    """Why scn does not run on arch_name, or None when it does."""
    why = getattr(scn, "skip_arch", {}).get(arch_name)
    return f"not run on {arch_name}: {why}" if why else None
