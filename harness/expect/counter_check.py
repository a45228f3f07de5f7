"""counter: how much a /proc/interrupts row grew on each CPU between two
snapshots."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from harness.core.yamlfile import Fields
from harness.expect import validators as vf
from harness.expect.kind import ExpectationKind, Outcome
from harness.expect.observations import Observations
from harness.expect.verdicts import ERROR, FAIL, PASS
from harness.parsers.interrupts import delta

if TYPE_CHECKING:
    from harness.scenario.parse import Ctx


def validate(args: dict[str, Any], af: Fields, ctx: "Ctx") -> None:
    between = args["between"]
    if len(between) != 2 or not all(isinstance(x, str) for x in between):
        raise af.at("between").error("expected two snapshot labels: [before, after]")
    for label in between:
        if label not in ctx.snapshot_labels:
            raise af.at("between").error(f"no snapshot labelled '{label}' "
                                         f"(snapshots: {', '.join(sorted(ctx.snapshot_labels)) or 'none'})")
    if between[0] == between[1]:
        raise af.at("between").error(f"expected two different snapshots, got '{between[0]}' twice "
                                     "(a snapshot compared with itself moves by 0 whatever the kernel did)")
    bounds = [k for k in ("delta", "at_least", "at_most") if args[k] is not None]
    if not bounds:
        raise af.where.error("give at least one of delta, at_least, at_most")
    for key in bounds:
        table = args[key]
        where = af.at(key)
        for cpu, value in table.items():
            if cpu != "others":
                vf.cpu_key(cpu, where, ctx)
            if not isinstance(value, int) or isinstance(value, bool):
                raise where.error(f"CPU {cpu}: expected an integer count, got {value!r}")


def expected(a: Mapping[str, Any]) -> str:
    parts = [f"{k} {a[k]}" for k in ("delta", "at_least", "at_most") if a[k] is not None]
    return f"'{a['row']}' {a['between'][0]}->{a['between'][1]}: " + ", ".join(parts)


def _per_cpu(table: dict, cpus: list[int]) -> dict[int, int]:
    """Expand {1: 0, others: 1} over the CPUs present."""
    out = {c: table["others"] for c in cpus if "others" in table}
    out.update({c: v for c, v in table.items() if c != "others"})
    return out


def evaluate(a: dict, obs: Observations) -> Outcome:
    first, second = a["between"]
    if first not in obs.snapshots or second not in obs.snapshots:
        return ERROR, f"snapshot '{first if first not in obs.snapshots else second}' was not taken", None
    before, after = obs.snapshots[first], obs.snapshots[second]
    broken = [lbl for lbl, snap in ((first, before), (second, after)) if snap.corrupted]
    if broken:
        return FAIL, (f"snapshot(s) {', '.join(broken)} could not be read cleanly (corrupted "
                      "/proc/interrupts output): no count from them is trusted"), None
    row = a["row"]
    d = delta(before, after, row)
    if d is None:
        missing = [lbl for lbl, s in ((first, before), (second, after)) if s.row(row) is None]
        return FAIL, (f"no '{row}' row in /proc/interrupts at snapshot(s) {', '.join(missing)}; "
                      f"IPI rows present: {', '.join(after.ipi_names()) or 'none'}"), None
    # 'others' means every CPU online at both snapshots (as the run brought
    # them up and down), not whichever columns happened to parse.
    on_a, on_b = obs.online_at(first), obs.online_at(second)
    cpus = sorted(set(on_a) & set(on_b)) if on_a is not None and on_b is not None else sorted(d)
    problems = []
    for key, op, text in (("delta", lambda x, y: x == y, "="), ("at_least", lambda x, y: x >= y, ">="),
                          ("at_most", lambda x, y: x <= y, "<=")):
        if a[key] is None:
            continue
        for cpu, want in sorted(_per_cpu(a[key], cpus).items()):
            if cpu not in d:
                problems.append(f"CPU {cpu} is online but has no column")
            elif not op(d[cpu], want):
                problems.append(f"CPU {cpu}: {d[cpu]:+d}, want {text} {want}")
    observed = "deltas " + ", ".join(f"CPU{c}:{d[c]:+d}" for c in sorted(d))
    if problems:
        return FAIL, observed + " (" + "; ".join(problems) + ")", None
    return PASS, observed, None


KIND = ExpectationKind(
    kind="counter",
    fields={
        "row": (str, True, None, None),
        "between": (list, True, None, None),
        "delta": (dict, False, None, None),
        "at_least": (dict, False, None, None),
        "at_most": (dict, False, None, None),
    },
    expected=expected,
    evaluate=evaluate,
    validate=validate,
)
