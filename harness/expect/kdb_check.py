"""kdb: what a kdb session in a step showed: the 'Available cpus' line,
each CPU's state, whether go was refused once, btc's traces."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from harness.core.yamlfile import Fields
from harness.expect.kind import ExpectationKind, Outcome, check_cpu_table, check_step, needs_one_of
from harness.expect.observations import Observations
from harness.expect.verdicts import ERROR, FAIL, PASS
from harness.parsers import cpulist

if TYPE_CHECKING:
    from harness.scenario.parse import Ctx

KDB_STATES = ("current", "responding", "idle", "unresponsive", "offline")


def validate(args: dict[str, Any], af: Fields, ctx: "Ctx") -> None:
    check_cpu_table(af, "states", args["states"], "state", KDB_STATES, ctx)
    if args["btc"] not in (None, "online"):
        raise af.at("btc").error("expected 'online' (btc shows a trace for every online CPU)")
    check_step(args, af, ctx)
    needs_one_of(args, af, ("available", "states", "go_refused", "btc"))


def expected(a: Mapping[str, Any]) -> str:
    parts = []
    if a["available"] is not None:
        parts.append(f"'Available cpus: {a['available']}'")
    if a["states"]:
        parts.append("states " + ", ".join(f"CPU{c}:{s}" for c, s in sorted(a["states"].items())))
    if a["go_refused"] is not None:
        parts.append("go refused once" if a["go_refused"] else "go accepted at once")
    if a["btc"]:
        parts.append("btc traces every online CPU")
    return f"kdb in step '{a['step']}': " + "; ".join(parts)


def evaluate(a: dict, obs: Observations) -> Outcome:
    step = a["step"]
    rec = obs.steps.get(step)
    if rec is None:
        return ERROR, f"step '{step}' did not run", step
    parsed = obs.kdb_output(step)
    session = parsed.sessions[-1] if parsed.sessions else None
    status = session.status if session else None
    listed = status.listed if status else None
    observed = [f"'Available cpus: {listed}'" if listed is not None else "no 'Available cpus' line",
                "states " + ", ".join(f"CPU{c}:{s}" for c, s in sorted(parsed.states.items())),
                "go refused once" if parsed.go_refused else "go accepted at once"]
    problems = []
    if a["available"] is not None and listed != a["available"]:
        problems.append(f"available {listed!r} != {a['available']!r}")
    for cpu, state in sorted((a["states"] or {}).items()):
        got = parsed.states.get(cpu)
        # An idle CPU answered the round-up too: kdb only marks it "(-)".
        if got != state and not (state == "responding" and got == "idle"):
            problems.append(f"CPU {cpu} is {parsed.states.get(cpu, 'absent')}, want {state}")
    if a["go_refused"] is not None and parsed.go_refused != a["go_refused"]:
        problems.append("go " + ("was not refused" if a["go_refused"] else "was refused"))
    if a["btc"]:
        traced = sorted(session.btc()) if session else []
        observed.append(f"btc traced CPUs {cpulist.format(traced) or 'none'}")
        if traced != rec.online:
            problems.append(f"btc traced {cpulist.format(traced) or 'none'}, online {cpulist.format(rec.online)}")
    text = "; ".join(observed)
    return (FAIL, f"{text} ({'; '.join(problems)})", step) if problems else (PASS, text, step)


KIND = ExpectationKind(
    kind="kdb",
    fields={
        "step": (str, True, None, None),
        "available": (str, False, None, None),
        "states": (dict, False, None, None),
        "go_refused": (bool, False, None, None),
        "btc": (str, False, None, None),
    },
    expected=expected,
    evaluate=evaluate,
    validate=validate,
)
