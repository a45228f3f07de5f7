"""backtrace: the backtraces printed after a step: every online CPU
accounted for by an IPI backtrace or its 'skipped: idling' line (accounted:
online), each CPU's in the form asked for, sent from the CPU asked for."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from harness.core.yamlfile import Fields
from harness.expect import validators as vf
from harness.expect.kind import ExpectationKind, Outcome, check_cpu_table, check_step, needs_one_of
from harness.expect.observations import Observations
from harness.expect.verdicts import ERROR, FAIL, PASS
from harness.parsers import backtrace, cpulist

if TYPE_CHECKING:
    from harness.scenario.parse import Ctx

BACKTRACE_FORMS = ("full", "idle", "fallback", "fallback-idle", "none")


def validate(args: dict[str, Any], af: Fields, ctx: "Ctx") -> None:
    check_cpu_table(af, "forms", args["forms"], "form", BACKTRACE_FORMS, ctx)
    check_step(args, af, ctx)
    if args["accounted"] not in ("online", "any"):
        raise af.at("accounted").error("expected 'online' (each online CPU has an IPI backtrace or "
                                       "'skipped: idling' line) or 'any' (no such requirement)")
    if args["accounted"] == "any":
        needs_one_of(args, af, ("forms", "sender"), " with accounted: any")


def expected(a: Mapping[str, Any]) -> str:
    s = f"every online CPU accounted for after step '{a['step']}' by an IPI backtrace"
    if a["accounted"] != "online":
        s = f"backtraces after step '{a['step']}'"
    if a["forms"]:
        s += "; forms " + ", ".join(f"CPU{c}:{f}" for c, f in sorted(a["forms"].items()))
    if a["sender"] is not None:
        s += f", sent from CPU {a['sender']}"
    return s


def evaluate(a: dict, obs: Observations) -> Outcome:
    step = a["step"]
    rec = obs.steps.get(step)
    if rec is None:
        return ERROR, f"step '{step}' did not run", step
    report = obs.backtraces(step)
    forms = report.forms()
    observed = "forms " + (", ".join(f"CPU{c}:{f}" for c, f in forms.items()) or "none")
    if report.sender is not None:
        observed += f"; sent from CPU {report.sender} to {cpulist.format(report.targets or [])}"
    problems = []
    if a["accounted"] == "online":
        for cpu in rec.online:
            form = forms.get(cpu)
            if form not in (backtrace.FULL, backtrace.IDLE):
                problems.append(f"CPU {cpu}: " + (f"{form} form, not an IPI backtrace" if form
                                                  else "no backtrace and no 'skipped: idling' line"))
        for cpu in forms:
            if cpu not in rec.online:
                problems.append(f"CPU {cpu} is offline but printed a backtrace")
    for cpu, want in sorted((a["forms"] or {}).items()):
        got = forms.get(cpu, "none")
        if got != want:
            problems.append(f"CPU {cpu}: {got} form, want {want}")
    if a["sender"] is not None and report.sender != a["sender"]:
        problems.append(f"no 'Sending NMI from CPU {a['sender']}' line")
    if problems:
        return FAIL, observed + " (" + "; ".join(problems) + ")", step
    return PASS, observed, step


KIND = ExpectationKind(
    kind="backtrace",
    fields={
        "step": (str, True, None, None),
        "sender": (int, False, None, vf.cpu),
        "accounted": (str, False, "online", None),
        "forms": (dict, False, None, None),
    },
    expected=expected,
    evaluate=evaluate,
    validate=validate,
)
