"""report: a kernel report of a given type (on a given CPU, in a given
step) was printed, or none at all."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from harness.core.yamlfile import Fields
from harness.expect import validators as vf
from harness.expect.kind import ExpectationKind, Outcome, check_step
from harness.expect.observations import Observations
from harness.expect.verdicts import FAIL, PASS
from harness.parsers import reports

if TYPE_CHECKING:
    from harness.scenario.parse import Ctx

REPORT_TYPES = ("none", "panic", "oops", "kernel-bug", "bug", "warning", "soft-lockup", "hard-lockup",
                "rcu-stall", "hung-task", "csd-lock", "cpu-hotplug", "lkdtm", "lkdtm-fail",
                "kasan", "kfence", "ubsan", "lockdep", "refcount", "sleeping-in-atomic", "kmemleak",
                "general-protection-fault")


def validate(args: dict[str, Any], af: Fields, ctx: "Ctx") -> None:
    if args["type"] not in REPORT_TYPES:
        raise af.at("type").error(f"unknown report type {args['type']!r} (expected one of: {', '.join(REPORT_TYPES)})")
    if args["step"]:
        check_step(args, af, ctx)


def expected(a: Mapping[str, Any]) -> str:
    where = f" in step '{a['step']}'" if a["step"] else ""
    if a["type"] == "none":
        return "no kernel report" + where
    return f"a {a['type']} report" + (f" on CPU {a['cpu']}" if a["cpu"] is not None else "") + where


def evaluate(a: dict, obs: Observations) -> Outcome:
    found = reports.parse(obs.step_text(a["step"])) if a["step"] else obs.kernel_reports()[1]
    summary = "; ".join(f"{r.type} on CPU {r.cpu}: {r.title}" for r in found) or "no reports"
    if a["type"] == "none":
        return (PASS if not found else FAIL), summary, a["step"]
    hits = [r for r in found if r.type == a["type"] and (a["cpu"] is None or r.cpu == a["cpu"])]
    return (PASS if hits else FAIL), summary, a["step"]


KIND = ExpectationKind(
    kind="report",
    fields={
        "type": (str, True, None, None),
        "cpu": (int, False, None, vf.cpu),
        "step": (str, False, None, None),
    },
    expected=expected,
    evaluate=evaluate,
    validate=validate,
)
