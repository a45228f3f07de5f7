"""latency: a percentile of how long the steps whose names start with a
prefix took, within bounds."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from harness.core.yamlfile import Fields
from harness.expect import validators as vf
from harness.expect.kind import ExpectationKind, Outcome
from harness.expect.observations import Observations
from harness.expect.verdicts import ERROR, FAIL, PASS

if TYPE_CHECKING:
    from harness.scenario.parse import Ctx


def validate(args: dict[str, Any], af: Fields, ctx: "Ctx") -> None:
    if args["max_ms"] is None and args["min_ms"] is None:
        raise af.where.error("give max_ms, min_ms or both")
    if args["min_ms"] is not None and not args["min_ms"] > 0:
        raise af.at("min_ms").error(f"expected a positive bound, got {args['min_ms']} (no latency is below it, "
                                    "so it passes whatever was measured)")
    if args["max_ms"] is not None and args["min_ms"] is not None and args["min_ms"] > args["max_ms"]:
        raise af.at("min_ms").error(f"min_ms {args['min_ms']:g} is above max_ms {args['max_ms']:g}: "
                                    "no latency can pass")
    if args["count"] is not None and args["count"] < 1:
        raise af.at("count").error(f"expected a count of at least 1 step, got {args['count']}")
    if not 0 < args["percentile"] <= 100:
        raise af.at("percentile").error("expected a percentile in (0, 100]")
    if not any(n.startswith(args["steps"]) for n in ctx.step_names):
        raise af.at("steps").error(f"no step name starts with '{args['steps']}'")


def expected(a: Mapping[str, Any]) -> str:
    bounds = [f"<= {a['max_ms']:g} ms" if a["max_ms"] is not None else "",
              f">= {a['min_ms']:g} ms" if a["min_ms"] is not None else ""]
    count = f" over {a['count']} steps" if a["count"] else ""
    return f"p{a['percentile']:g} of steps '{a['steps']}*' {' and '.join(b for b in bounds if b)}{count}"


def evaluate(a: dict, obs: Observations) -> Outcome:
    values = sorted(float(rec.detail.get("latency_ms", rec.seconds * 1000))
                    for name, rec in obs.steps.items() if name.startswith(a["steps"]))
    if not values:
        return ERROR, f"no step named '{a['steps']}*' ran", None
    rank = max(0, min(len(values) - 1, int(round(a["percentile"] / 100 * len(values) + 0.5)) - 1))
    p = values[rank]
    observed = (f"p{a['percentile']:g} = {p:.0f} ms over {len(values)} steps "
                f"(min {values[0]:.0f}, median {values[len(values) // 2]:.0f}, max {values[-1]:.0f})")
    problems = []
    if a["max_ms"] is not None and p > a["max_ms"]:
        problems.append(f"above {a['max_ms']:g} ms")
    if a["min_ms"] is not None and p < a["min_ms"]:
        problems.append(f"below {a['min_ms']:g} ms")
    if a["count"] is not None and len(values) != a["count"]:
        problems.append(f"{len(values)} steps ran, want {a['count']}")
    return (FAIL, observed + " (" + "; ".join(problems) + ")", None) if problems else (PASS, observed, None)


KIND = ExpectationKind(
    kind="latency",
    fields={
        "steps": (str, True, None, None),
        "max_ms": (vf.NUM, False, None, vf.positive),
        "min_ms": (vf.NUM, False, None, None),
        "percentile": (vf.NUM, False, 100, None),
        "count": (int, False, None, None),
    },
    expected=expected,
    evaluate=evaluate,
    validate=validate,
)
