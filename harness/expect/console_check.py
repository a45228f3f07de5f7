"""console: a regular expression present in (or absent from) the console,
or one step's part of it, or the lines the kernel attributes to one CPU."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Mapping

from harness.core.yamlfile import Fields
from harness.expect import validators as vf
from harness.expect.kind import ExpectationKind, Outcome, check_step
from harness.expect.observations import Observations
from harness.expect.verdicts import FAIL, PASS
from harness.parsers import console_lines

if TYPE_CHECKING:
    from harness.scenario.parse import Ctx


def validate(args: dict[str, Any], af: Fields, ctx: "Ctx") -> None:
    if args["step"]:
        check_step(args, af, ctx)
    if (args["present"] is None) == (args["absent"] is None):
        raise af.where.error("give exactly one of 'present' or 'absent'")
    key = "present" if args["present"] is not None else "absent"
    vf.regex(args[key], af.at(key), ctx)


def expected(a: Mapping[str, Any]) -> str:
    return (f"/{a['present']}/ present" if a["present"] else f"/{a['absent']}/ absent") + \
        (f" in step '{a['step']}'" if a["step"] else "") + \
        (f" on lines attributed to CPU {a['cpu']}" if a["cpu"] is not None else "")


def evaluate(a: dict, obs: Observations) -> Outcome:
    text = obs.step_text(a["step"]) if a["step"] else obs.console
    if a["cpu"] is not None:
        # Only lines the kernel attributes to that CPU: CONFIG_PRINTK_CALLER's
        # [C<n>] prefix (interrupt context, e.g. a backtrace IPI handler).
        text = "\n".join(ln.text for ln in console_lines.split(text) if ln.caller_cpu == a["cpu"])
    pattern = a["present"] or a["absent"]
    m = re.search(pattern, text, re.MULTILINE)
    found = f"found {m.group(0)!r}" if m else "not found"
    ok = bool(m) == bool(a["present"])
    return (PASS if ok else FAIL), found, a["step"]


KIND = ExpectationKind(
    kind="console",
    fields={
        "step": (str, False, None, None),
        "present": (str, False, None, None),
        "absent": (str, False, None, None),
        "cpu": (int, False, None, vf.cpu),
    },
    expected=expected,
    evaluate=evaluate,
    validate=validate,
)
