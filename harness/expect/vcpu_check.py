"""vcpu: where QEMU saw given vCPUs executing, in every sample of a vcpus
(or kdb) step's probe."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from harness.core.yamlfile import Fields
from harness.expect import validators as vf
from harness.expect.kind import ExpectationKind, Outcome
from harness.expect.observations import Observations
from harness.expect.verdicts import ERROR, FAIL, PASS
from harness.parsers import cpulist

if TYPE_CHECKING:
    from harness.scenario.parse import Ctx


def validate(args: dict[str, Any], af: Fields, ctx: "Ctx") -> None:
    if args["probe"] not in ctx.probe_labels:
        raise af.at("probe").error(f"no vcpus probe labelled '{args['probe']}' (probes: "
                                   f"{', '.join(sorted(ctx.probe_labels)) or 'none'})")


def expected(a: Mapping[str, Any]) -> str:
    return (f"probe '{a['probe']}': vCPU(s) {cpulist.format(a['cpus'])} in "
            f"{' or '.join(a['where'])} in every sample")


def evaluate(a: dict, obs: Observations) -> Outcome:
    probe = obs.probes.get(a["probe"])
    if probe is None:
        return ERROR, f"probe '{a['probe']}' was not taken", None
    seen = probe.locations()
    problems = []
    for cpu in a["cpus"]:
        locs = seen.get(cpu)
        if locs is None:
            problems.append(f"QEMU reported no vCPU {cpu}")
        elif bad := [loc for loc in locs if loc not in a["where"]]:
            sample = next(s for rnd in probe.samples for s in rnd if s.cpu == cpu and s.location in bad)
            problems.append(f"CPU {cpu} in {bad[0]} (pc {sample.pc:#x} {sample.pc_symbol or '?'}, "
                            f"ra {sample.ra_symbol or '?'})")
    observed = "; ".join(f"CPU{c}: {'/'.join(sorted(set(v)))}" for c, v in sorted(seen.items()))
    return (FAIL, f"{observed} ({'; '.join(problems)})", None) if problems else (PASS, observed, None)


KIND = ExpectationKind(
    kind="vcpu",
    fields={
        "probe": (str, True, None, None),
        "cpus": (list, True, None, vf.cpu_list),
        "where": (list, True, None, vf.locations),
    },
    expected=expected,
    evaluate=evaluate,
    validate=validate,
)
