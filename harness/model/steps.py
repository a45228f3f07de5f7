"""Step input for the model: harness.scenario.Step objects or plain dicts,
with defaults for the step kinds scenario.py does not validate yet, and
expand() for repeat steps."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

from ..scenario import Step, fill
from ..yamlfile import Where

# Argument defaults, with the names the scenario schemas use (and will use
# for kdb, lkdtm, load and repeat).
DEFAULTS: dict[str, dict[str, Any]] = {
    "snapshot": {"label": None},
    "shell": {"command": None, "status": 0},
    "sleep": {"seconds": 0.0},
    "wait_for": {"pattern": None},
    "sysrq": {"key": None, "cpu": None, "via": "proc"},
    "hotplug": {"cpu": None, "online": None},
    # The harness answers a refused go with a second go (console.kdb_go).
    "kdb": {"cpu": None, "commands": ["btc"], "go_twice": True, "via": None, "probe": None},
    "lkdtm": {"crash": None, "cpu": None},
    "load": {"cpu": None, "seconds": None},
    "repeat": {"times": None, "cpus": None, "steps": []},
    "vcpus": {"label": None, "rounds": 3},
    "pause": {"seconds": 0.0},
    "reset": {"after": 0.0, "during": None},
    "balloon": {"target": None, "hold": 1.0},
    "starve": {"cpus": [], "seconds": 0.0, "during": None, "share": 0.01},
    "nmi": {},
    "panic": {"cpu": None},
}
SHORTHAND = {"snapshot": "label", "shell": "command", "sleep": "seconds", "sysrq": "key",
             "lkdtm": "crash", "load": "cpu", "wait_for": "pattern", "vcpus": "label",
             "pause": "seconds", "balloon": "target", "panic": "cpu"}
COMMON = ("name", "timeout")

_NOWHERE = Where(Path("<model>"))


def make_step(kind: str, name: str | None = None, timeout: float = 30.0, **args: Any) -> Step:
    """A Step built in code (tests, explain)."""
    return Step(kind, name or kind, timeout, dict(args), _NOWHERE)


def as_step(raw: Any, index: int = 0) -> Step:
    """A Step from a Step, {"kind", "name", "args"} or a scenario-file mapping
    ({"sysrq": {...}, "name": ...} or {"snapshot": "before"})."""
    if isinstance(raw, Step):
        return raw
    if isinstance(raw, Mapping):
        if "kind" in raw:
            kind = raw["kind"]
            return Step(kind, raw.get("name") or f"{index + 1}-{kind}", float(raw.get("timeout", 30.0)),
                        dict(raw.get("args") or {}), raw.get("where") or _NOWHERE)
        kinds = [k for k in raw if k not in COMMON]
        if len(kinds) != 1:
            raise ValueError(f"step {index + 1}: expected exactly one step kind, got {kinds}")
        kind = kinds[0]
        body = raw[kind]
        if not isinstance(body, Mapping):
            if kind not in SHORTHAND:
                raise ValueError(f"step {index + 1}: '{kind}' needs a mapping of arguments")
            body = {SHORTHAND[kind]: body}
        return Step(kind, raw.get("name") or f"{index + 1}-{kind}", float(raw.get("timeout", 30.0)),
                    dict(body), _NOWHERE)
    raise TypeError(f"step {index + 1}: not a step: {raw!r}")


def with_defaults(step: Step) -> dict[str, Any]:
    """The step's arguments with the defaults of its kind filled in."""
    args = dict(DEFAULTS.get(step.kind, {}))
    args.update({k: v for k, v in step.args.items() if v is not None or k not in args})
    return args


def _substitute(value: Any, env: Mapping[str, int]) -> Any:
    if isinstance(value, str):
        return fill(value, env)
    if isinstance(value, Step):
        return Step(value.kind, _substitute(value.name, env), value.timeout,
                    _substitute(value.args, env), value.where)
    if isinstance(value, Mapping):
        return {k: _substitute(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, env) for v in value]
    return value


def _placeholders(value: Any) -> bool:
    if isinstance(value, str):
        return "{cpu}" in value or "{i}" in value
    if isinstance(value, Mapping):
        return any(_placeholders(v) for v in value.values())
    if isinstance(value, list):
        return any(_placeholders(v) for v in value)
    return False


def expand(steps: Iterable[Any]) -> list[Step]:
    """Steps with every repeat unrolled. A repeat {times: n, steps: [...]}
    runs its steps n times with "{i}" = 0..n-1; {cpus: [a, b], steps: [...]}
    once per CPU with "{cpu}" = that CPU and "{i}" its index. A string that
    is exactly "{cpu}" or "{i}" becomes the integer. Inner step names become
    "<repeat name>[<i>].<inner name>"."""
    out: list[Step] = []
    for index, raw in enumerate(steps):
        step = as_step(raw, index)
        if step.kind != "repeat":
            out.append(step)
            continue
        args = with_defaults(step)
        if args["cpus"] is not None:
            rounds = [{"i": i, "cpu": int(c)} for i, c in enumerate(args["cpus"])]
        elif args["times"] is not None:
            rounds = [{"i": i} for i in range(int(args["times"]))]
        else:
            raise ValueError(f"repeat step '{step.name}' needs 'times' or 'cpus'")
        inner_raw = list(args["steps"] or [])
        for env in rounds:
            inner = [as_step(_substitute(r if isinstance(r, Step) else dict(r), env), j)
                     for j, r in enumerate(inner_raw)]
            for sub in expand(inner):
                out.append(Step(sub.kind, f"{step.name}[{env['i']}].{sub.name}", sub.timeout,
                                sub.args, sub.where if sub.where is not _NOWHERE else step.where))
    return out


def expand_checked(steps: Iterable[Any]) -> list[Step]:
    """expand(), refusing placeholders no repeat filled in ("{cpu}" in a
    repeat without cpus)."""
    out = expand(steps)
    for step in out:
        if _placeholders(step.args):
            raise ValueError(f"step '{step.name}': '{{cpu}}' or '{{i}}' outside a repeat that sets it")
    return out
