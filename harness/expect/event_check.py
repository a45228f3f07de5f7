"""event: a QMP event QEMU sent (or did not send), during the run or
during one step."""
from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any, Mapping

from harness.core.yamlfile import Fields
from harness.expect.kind import ExpectationKind, Outcome, check_step
from harness.expect.observations import Observations
from harness.expect.verdicts import ERROR, FAIL, PASS
from harness.guest.qmp_events import QMP_EVENTS

if TYPE_CHECKING:
    from harness.scenario.parse import Ctx


def validate(args: dict[str, Any], af: Fields, ctx: "Ctx") -> None:
    if args["name"] not in QMP_EVENTS:
        close = difflib.get_close_matches(args["name"], QMP_EVENTS, n=1)
        raise af.at("name").error(f"unknown QMP event {args['name']!r}"
                                  + (f" (did you mean {close[0]}?)" if close else "")
                                  + " (harness/guest/qmp_events.py lists QEMU's events)")
    if args["step"]:
        check_step(args, af, ctx)


def expected(a: Mapping[str, Any]) -> str:
    return (f"QMP event {a['name']} " + ("seen" if a["present"] else "not seen") +
            (f" during step '{a['step']}'" if a["step"] else ""))


def evaluate(a: dict, obs: Observations) -> Outcome:
    if a["step"]:
        rec = obs.steps.get(a["step"])
        if rec is None:
            return ERROR, f"step '{a['step']}' did not run", a["step"]
        names = rec.detail.get("qmp_events", [])
    else:
        names = [e["event"] for e in obs.qmp_events]
    seen = a["name"] in names
    observed = "events: " + (", ".join(names[-20:]) or "none")
    return (PASS if seen == a["present"] else FAIL), observed, a["step"]


KIND = ExpectationKind(
    kind="event",
    fields={
        "name": (str, True, None, None),
        "step": (str, False, None, None),
        "present": (bool, False, True, None),
    },
    expected=expected,
    evaluate=evaluate,
    validate=validate,
)
