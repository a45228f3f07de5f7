"""Scenario files: what to do to a running SMP kernel and what must hold.
Validated completely before any QEMU starts; every error names the file,
line and column."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from . import archskip, yamlfile
from .errors import InputError
from .yamlfile import Fields, Where, item_where
from .vcpus import HANG_PROBE

SCENARIO_KEYS = ("name", "description", "covers", "also_fails_without", "machine", "requires",
                 "steps", "expect", "skip_arch")
MACHINE_KEYS = ("cpus", "memory", "cmdline", "qemu_args", "boot_timeout", "reboot")
MAX_CPUS = 8  # CONFIG_NR_CPUS in kernels/configs/riscv-ipi.config
_MEMORY = re.compile(r"^\d+[MG]$")
_CONFIG = re.compile(r"^CONFIG_[A-Z0-9_]+$")


@dataclass(frozen=True)
class MachineSettings:
    cpus: int = 4
    memory: str = "512M"
    cmdline: tuple[str, ...] = ()
    qemu_args: tuple[str, ...] = ()
    boot_timeout: float = 60.0
    reboot: bool = False        # False: -no-reboot, so a reset ends QEMU (and the scenario)


def size_bytes(text: str) -> int:
    """'512M' or '1G' in bytes (validated by _MEMORY)."""
    return int(text[:-1]) << (20 if text[-1] == "M" else 30)


@dataclass(frozen=True)
class Step:
    kind: str
    name: str
    timeout: float
    args: dict[str, Any]
    where: Where


@dataclass(frozen=True)
class Expectation:
    kind: str
    name: str
    args: dict[str, Any]
    where: Where


@dataclass(frozen=True)
class Scenario:
    name: str
    path: Path
    description: str
    covers: tuple[str, ...]
    machine: MachineSettings
    requires: tuple[str, ...]
    steps: tuple[Step, ...]
    expect: tuple[Expectation, ...]
    also_fails_without: tuple[str, ...] = ()
    skip_arch: Mapping[str, str] = field(default_factory=dict)   # arch -> why not (archskip.py)


# ------------------------------------------------------------------ schemas
# A field: (accepted types, required, default, extra validation or None).
# Validators take (value, where, ctx) and raise where.error(...).

Validator = Callable[[Any, Where, "Ctx"], None]


@dataclass
class Ctx:
    cpus: int
    step_names: set[str] = field(default_factory=set)
    snapshot_labels: set[str] = field(default_factory=set)
    probe_labels: set[str] = field(default_factory=set)
    memory: int = 512 << 20


def _cpu(value: Any, where: Where, ctx: Ctx) -> None:
    if not 0 <= value < ctx.cpus:
        raise where.error(f"CPU {value} out of range: the machine has cpus: {ctx.cpus} (0-{ctx.cpus - 1})")


def _sysrq_key(value: Any, where: Where, ctx: Ctx) -> None:
    if not re.fullmatch(r"[0-9a-z]", value):
        raise where.error(f"expected a single sysrq key [0-9a-z], got {value!r}")


def _positive(value: Any, where: Where, ctx: Ctx) -> None:
    if value <= 0:
        raise where.error(f"expected a positive number, got {value}")


def _one_line(value: Any, where: Where, ctx: Ctx) -> None:
    if "\n" in value or not value.strip():
        raise where.error("expected a non-empty single-line shell command")


def _via(value: Any, where: Where, ctx: Ctx) -> None:
    if value not in ("proc", "break"):
        raise where.error(f"expected 'proc' (/proc/sysrq-trigger) or 'break' (serial BREAK), got {value!r}")


def _not_negative(value: Any, where: Where, ctx: Ctx) -> None:
    if value < 0:
        raise where.error(f"expected a number >= 0, got {value}")


def _cpu_list(value: Any, where: Where, ctx: Ctx) -> None:
    if not value:
        raise where.error("expected a non-empty list of CPU numbers")
    for c in value:
        if not isinstance(c, int) or isinstance(c, bool):
            raise where.error(f"expected CPU numbers, got {c!r}")
        _cpu(c, where, ctx)


def _share(value: Any, where: Where, ctx: Ctx) -> None:
    if not 0.01 <= value < 1:
        raise where.error(f"expected a share of one host CPU from 0.01 to below 1, got {value}")


def _balloon_target(value: Any, where: Where, ctx: Ctx) -> None:
    if not _MEMORY.match(value):
        raise where.error(f"expected a size like 256M, got {value!r}")
    if not 64 << 20 <= size_bytes(value) < ctx.memory:
        raise where.error(f"expected a target from 64M up to below the machine's memory "
                          f"({ctx.memory >> 20}M), got {value}")


def _locations(value: Any, where: Where, ctx: Ctx) -> None:
    from .vcpus import ALL_LOCATIONS
    for loc in value:
        if loc not in ALL_LOCATIONS:
            raise where.error(f"unknown vCPU location {loc!r} (expected one of: {', '.join(ALL_LOCATIONS)})")


NUM = (int, float)

# LKDTM crash points the scenarios use (drivers/misc/lkdtm/); those that
# never return run in the background.
LKDTM_BACKGROUND = ("HARDLOCKUP", "SOFTLOCKUP", "SPINLOCKUP", "HUNG_TASK", "SMP_CALL_LOCKUP")
LKDTM_CRASHING = ("PANIC", "BUG", "EXCEPTION", "CORRUPT_STACK", "UNALIGNED_LOAD_STORE_WRITE")
LKDTM_RETURNING = ("WARNING", "WARNING_MESSAGE")
LKDTM_POINTS = LKDTM_BACKGROUND + LKDTM_CRASHING + LKDTM_RETURNING


def _lkdtm(value: Any, where: Where, ctx: Ctx) -> None:
    if value not in LKDTM_POINTS:
        raise where.error(f"unknown LKDTM crash point {value!r} (expected one of: {', '.join(LKDTM_POINTS)})")


def _regex(value: str, where: Where) -> None:
    try:
        re.compile(value)
    except re.error as exc:
        raise where.error(f"bad regular expression: {exc}") from None


def _kdb_commands(value: Any, where: Where, ctx: Ctx) -> None:
    for cmd in value:
        if not isinstance(cmd, str) or "\n" in cmd or not cmd.strip():
            raise where.error(f"expected one-line kdb commands, got {cmd!r}")
        if cmd.strip() == "go":
            raise where.error("leave 'go' out: the step always leaves kdb with go")

STEP_SCHEMAS: dict[str, tuple[str | None, dict[str, tuple[Any, bool, Any, Validator | None]]]] = {
    # kind: (shorthand field for a scalar value, fields)
    "shell": ("command", {
        "command": (str, True, None, _one_line),
        "status": (int, False, 0, None),
    }),
    "sysrq": ("key", {
        "key": (str, True, None, _sysrq_key),
        "cpu": (int, False, None, _cpu),
        "via": (str, False, "proc", _via),
    }),
    "snapshot": ("label", {
        "label": (str, True, None, None),
    }),
    "sleep": ("seconds", {
        "seconds": (NUM, True, None, _positive),
    }),
    "hotplug": (None, {
        "cpu": (int, True, None, _cpu),
        "online": (bool, True, None, None),
    }),
    "kdb": (None, {
        "cpu": (int, True, None, _cpu),
        "commands": (list, False, ["btc"], _kdb_commands),
        "probe": (str, False, None, None),
    }),
    "lkdtm": ("crash", {
        "crash": (str, True, None, _lkdtm),
        "cpu": (int, False, None, _cpu),
    }),
    "wait_for": ("pattern", {
        "pattern": (str, True, None, lambda v, w, c: _regex(v, w)),
    }),
    "load": ("cpu", {
        "cpu": (int, True, None, _cpu),
        "seconds": (NUM, False, None, _positive),
    }),
    # Faults and probes from outside the guest (QMP, host scheduler).
    "pause": ("seconds", {
        "seconds": (NUM, True, None, _positive),
    }),
    "reset": (None, {
        "after": (NUM, False, 0, _not_negative),
        "during": (str, False, None, _one_line),
    }),
    "balloon": ("target", {
        "target": (str, True, None, _balloon_target),
        "hold": (NUM, False, 1.0, _not_negative),
    }),
    "starve": (None, {
        "cpus": (list, True, None, _cpu_list),
        "seconds": (NUM, True, None, _positive),
        "during": (str, False, None, _one_line),
        "share": (NUM, False, 0.01, _share),
    }),
    "nmi": (None, {}),
    "panic": ("cpu", {
        "cpu": (int, False, None, _cpu),
    }),
    "vcpus": ("label", {
        "label": (str, True, None, None),
        "rounds": (int, False, 3, _positive),
    }),
}
REPEAT_KEYS = ("times", "cpus", "steps")
STEP_COMMON = ("name", "timeout")
ALL_STEP_KINDS = tuple(STEP_SCHEMAS) + ("repeat",)

EXPECT_SCHEMAS: dict[str, dict[str, tuple[Any, bool, Any, Validator | None]]] = {
    "counter": {
        "row": (str, True, None, None),
        "between": (list, True, None, None),
        "delta": (dict, False, None, None),
        "at_least": (dict, False, None, None),
        "at_most": (dict, False, None, None),
    },
    "backtrace": {
        "step": (str, True, None, None),
        "sender": (int, False, None, _cpu),
        "accounted": (str, False, "online", None),
        "forms": (dict, False, None, None),
    },
    "console": {
        "step": (str, False, None, None),
        "present": (str, False, None, None),
        "absent": (str, False, None, None),
        "cpu": (int, False, None, _cpu),
    },
    "exit_status": {
        "step": (str, True, None, None),
        "status": (int, True, None, None),
    },
    "kdb": {
        "step": (str, True, None, None),
        "available": (str, False, None, None),
        "states": (dict, False, None, None),
        "go_refused": (bool, False, None, None),
        "btc": (str, False, None, None),
    },
    "report": {
        "type": (str, True, None, None),
        "cpu": (int, False, None, _cpu),
        "step": (str, False, None, None),
    },
    "latency": {
        "steps": (str, True, None, None),
        "max_ms": (NUM, False, None, _positive),
        "min_ms": (NUM, False, None, None),
        "percentile": (NUM, False, 100, None),
        "count": (int, False, None, None),
    },
    "vcpu": {
        "probe": (str, True, None, None),
        "cpus": (list, True, None, _cpu_list),
        "where": (list, True, None, _locations),
    },
    "event": {
        "name": (str, True, None, None),
        "step": (str, False, None, None),
        "present": (bool, False, True, None),
    },
    "model": {},
}
REPORT_TYPES = ("none", "panic", "oops", "kernel-bug", "bug", "warning", "soft-lockup", "hard-lockup",
                "rcu-stall", "hung-task", "csd-lock", "cpu-hotplug", "lkdtm", "lkdtm-fail",
                "kasan", "kfence", "ubsan", "lockdep", "refcount", "sleeping-in-atomic", "kmemleak",
                "general-protection-fault")
BACKTRACE_FORMS = ("full", "idle", "fallback", "fallback-idle", "none")
KDB_STATES = ("current", "responding", "idle", "unresponsive", "offline")


def _fields(path: Path, raw: Any, schema: dict, ctx: Ctx, context: str, where: Where,
            shorthand: str | None = None) -> dict[str, Any]:
    if not isinstance(raw, dict):
        if shorthand is None:
            raise where.error(f"expected a mapping with keys: {', '.join(schema)}")
        raw = {shorthand: raw}
        f = Fields(path, yamlfile.MDict(raw), context, where)
    else:
        f = Fields(path, raw, context, where)
    f.reject_unknown(schema)
    out: dict[str, Any] = {}
    for key, (types, required, default, check) in schema.items():
        val = f.get(key, types, default, required)
        if val is not None and check is not None:
            check(val, f.at(key), ctx)
        out[key] = val
    return out


def fill(text: str, subst: Mapping[str, int]) -> Any:
    """Fill {cpu} and {i} placeholders; a value that is exactly "{cpu}"
    becomes the integer."""
    for k, v in subst.items():
        if text == "{" + k + "}":
            return v
    for k, v in subst.items():
        text = text.replace("{" + k + "}", str(v))
    return text


def _substitute(value: Any, subst: dict[str, int]) -> Any:
    """fill() through a repeated block's values, keeping YAML positions."""
    if isinstance(value, str):
        return fill(value, subst)
    if isinstance(value, dict):
        out = yamlfile.MDict({k: _substitute(v, subst) for k, v in value.items()})
        out.line, out.column = getattr(value, "line", 0), getattr(value, "column", 0)
        out.key_pos = getattr(value, "key_pos", {})
        return out
    if isinstance(value, list):
        lst = yamlfile.MList(_substitute(v, subst) for v in value)
        lst.line, lst.column = getattr(value, "line", 0), getattr(value, "column", 0)
        lst.item_pos = getattr(value, "item_pos", [])
        return lst
    return value


def _parse_steps(path: Path, seq: Any, ctx: Ctx, context: str, subst: dict[str, int],
                 suffix: str) -> list[Step]:
    out: list[Step] = []
    for i, raw in enumerate(seq):
        where = item_where(path, seq, i, f"{context}[{i}]")
        if isinstance(raw, dict) and "repeat" in raw:
            out.extend(_parse_repeat(path, raw, where, f"{context}[{i}]", ctx, subst, suffix))
        else:
            out.append(_parse_step(path, _substitute(raw, subst), where, len(ctx.step_names), ctx,
                                   f"{context}[{i}]", suffix))
    return out


def _parse_repeat(path: Path, raw: Any, where: Where, context: str, ctx: Ctx,
                  subst: dict[str, int], suffix: str) -> list[Step]:
    f = Fields(path, raw, context, where)
    f.reject_unknown(("repeat", "name"))
    rf = Fields(path, raw["repeat"], f"{context}.repeat", f.at("repeat"))
    rf.reject_unknown(REPEAT_KEYS)
    times = rf.get("times", int)
    cpus = rf.get("cpus", list)
    if (times is None) == (cpus is None):
        raise rf.where.error("give exactly one of 'times' or 'cpus'")
    body = rf.get("steps", list, required=True)
    if not body:
        raise rf.at("steps").error("a repeat needs at least one step")
    rounds: list[dict[str, int]] = []
    if times is not None:
        if not 1 <= times <= 1000:
            raise rf.at("times").error(f"expected 1 to 1000 repetitions, got {times}")
        rounds = [{"i": i} for i in range(times)]
    else:
        for j, c in enumerate(cpus):
            if not isinstance(c, int) or isinstance(c, bool):
                raise rf.at("cpus").error(f"cpus[{j}]: expected a CPU number, got {c!r}")
            _cpu(c, rf.at("cpus"), ctx)
        rounds = [{"i": i, "cpu": c} for i, c in enumerate(cpus)]
    out: list[Step] = []
    for r in rounds:
        tag = f"#{r['i']}" + (f"@cpu{r['cpu']}" if "cpu" in r else "")
        out.extend(_parse_steps(path, body, ctx, f"{context}.repeat.steps", {**subst, **r},
                                suffix + tag))
    return out


def _parse_step(path: Path, raw: Any, where: Where, index: int, ctx: Ctx,
                context: str = "", suffix: str = "") -> Step:
    f = Fields(path, raw, context or f"steps[{index}]", where)
    kinds = [k for k in raw if k in STEP_SCHEMAS]
    unknown = [k for k in raw if k not in STEP_SCHEMAS and k not in STEP_COMMON]
    if unknown:
        raise f.at(str(unknown[0])).error(
            f"unknown key '{unknown[0]}' (step types: {', '.join(ALL_STEP_KINDS)}; "
            f"common keys: {', '.join(STEP_COMMON)})")
    if len(kinds) != 1:
        raise f.where.error(f"a step needs exactly one step type ({', '.join(ALL_STEP_KINDS)}), "
                            f"got {len(kinds)}")
    kind = kinds[0]
    shorthand, schema = STEP_SCHEMAS[kind]
    args = _fields(path, raw[kind], schema, ctx, f"{f.context}.{kind}", f.at(kind), shorthand)
    name = f.get("name", str, f"{index + 1}-{kind}") + suffix
    if name in ctx.step_names:
        raise f.at("name").error(f"duplicate step name '{name}'")
    ctx.step_names.add(name)
    timeout = float(f.get("timeout", NUM, 30.0))
    _positive(timeout, f.at("timeout"), ctx)
    label = args.get("probe") if kind == "kdb" else args["label"] if kind == "vcpus" else None
    if label is not None:
        if label in ctx.probe_labels:
            raise f.at(kind).error(f"duplicate probe label '{label}'")
        if label == HANG_PROBE:
            raise f.at(kind).error(f"probe label '{HANG_PROBE}' is reserved for the probe the "
                                   "harness takes when the guest hangs")
        ctx.probe_labels.add(label)
    if kind == "snapshot":
        if args["label"] in ctx.snapshot_labels:
            raise f.at(kind).error(f"duplicate snapshot label '{args['label']}'")
        ctx.snapshot_labels.add(args["label"])
    return Step(kind, name, timeout, args, f.where)


def _parse_expect(path: Path, raw: Any, where: Where, index: int, ctx: Ctx) -> Expectation:
    f = Fields(path, raw, f"expect[{index}]", where)
    kinds = [k for k in raw if k in EXPECT_SCHEMAS]
    unknown = [k for k in raw if k not in EXPECT_SCHEMAS and k != "name"]
    if unknown:
        raise f.at(str(unknown[0])).error(
            f"unknown key '{unknown[0]}' (expectation types: {', '.join(EXPECT_SCHEMAS)})")
    if len(kinds) != 1:
        raise f.where.error(f"an expectation needs exactly one type ({', '.join(EXPECT_SCHEMAS)})")
    kind = kinds[0]
    if kind == "model":
        if raw[kind] is not True:
            raise f.at(kind).error("expected 'model: true'")
        return Expectation(kind, f.get("name", str, "model"), {}, f.where)
    args = _fields(path, raw[kind], EXPECT_SCHEMAS[kind], ctx, f"expect[{index}].{kind}", f.at(kind))
    af = Fields(path, raw[kind], f"expect[{index}].{kind}", f.at(kind))
    if kind == "counter":
        _check_counter(args, af, ctx)
    if kind == "kdb":
        for cpu, state in (args["states"] or {}).items():
            if not isinstance(cpu, int):
                raise af.at("states").error(f"keys are CPU numbers, got {cpu!r}")
            _cpu(cpu, af.at("states"), ctx)
            if state not in KDB_STATES:
                raise af.at("states").error(f"CPU {cpu}: unknown state {state!r} (expected one of: {', '.join(KDB_STATES)})")
        if args["btc"] not in (None, "online"):
            raise af.at("btc").error("expected 'online' (btc shows a trace for every online CPU)")
    if kind == "backtrace":
        for cpu, form in (args["forms"] or {}).items():
            if not isinstance(cpu, int):
                raise af.at("forms").error(f"keys are CPU numbers, got {cpu!r}")
            _cpu(cpu, af.at("forms"), ctx)
            if form not in BACKTRACE_FORMS:
                raise af.at("forms").error(f"CPU {cpu}: unknown form {form!r} (expected one of: {', '.join(BACKTRACE_FORMS)})")
    if kind == "report" and args["type"] not in REPORT_TYPES:
        raise af.at("type").error(f"unknown report type {args['type']!r} (expected one of: {', '.join(REPORT_TYPES)})")
    if kind == "latency":
        if args["max_ms"] is None and args["min_ms"] is None:
            raise af.where.error("give max_ms, min_ms or both")
        if not 0 < args["percentile"] <= 100:
            raise af.at("percentile").error("expected a percentile in (0, 100]")
        if not any(n.startswith(args["steps"]) for n in ctx.step_names):
            raise af.at("steps").error(f"no step name starts with '{args['steps']}'")
    if kind == "vcpu" and args["probe"] not in ctx.probe_labels:
        raise af.at("probe").error(f"no vcpus probe labelled '{args['probe']}' (probes: "
                                   f"{', '.join(sorted(ctx.probe_labels)) or 'none'})")
    if kind in ("backtrace", "exit_status", "kdb") or (kind in ("console", "report", "event") and args["step"]):
        if args["step"] not in ctx.step_names:
            raise af.at("step").error(f"no step named '{args['step']}' (steps: {', '.join(sorted(ctx.step_names))})")
    if kind == "console":
        if (args["present"] is None) == (args["absent"] is None):
            raise af.where.error("give exactly one of 'present' or 'absent'")
        pattern = args["present"] or args["absent"]
        try:
            re.compile(pattern)
        except re.error as exc:
            raise af.at("present" if args["present"] else "absent").error(f"bad regular expression: {exc}")
    if kind == "backtrace" and args["accounted"] not in ("online", "any"):
        raise af.at("accounted").error("expected 'online' (each online CPU has an IPI backtrace or "
                                       "'skipped: idling' line) or 'any' (no such requirement)")
    return Expectation(kind, f.get("name", str, f"{kind}-{index + 1}"), args, f.where)


def _check_counter(args: dict, af: Fields, ctx: Ctx) -> None:
    between = args["between"]
    if len(between) != 2 or not all(isinstance(x, str) for x in between):
        raise af.at("between").error("expected two snapshot labels: [before, after]")
    for label in between:
        if label not in ctx.snapshot_labels:
            raise af.at("between").error(f"no snapshot labelled '{label}' "
                                         f"(snapshots: {', '.join(sorted(ctx.snapshot_labels)) or 'none'})")
    bounds = [k for k in ("delta", "at_least", "at_most") if args[k] is not None]
    if not bounds:
        raise af.where.error("give at least one of delta, at_least, at_most")
    for key in bounds:
        table = args[key]
        where = af.at(key)
        for cpu, value in table.items():
            if cpu != "others" and not isinstance(cpu, int):
                raise where.error(f"keys are CPU numbers or 'others', got {cpu!r}")
            if isinstance(cpu, int):
                _cpu(cpu, where, ctx)
            if not isinstance(value, int) or isinstance(value, bool):
                raise where.error(f"CPU {cpu}: expected an integer count, got {value!r}")


def load(path: Path) -> Scenario:
    data = yamlfile.load(path)
    f = Fields(path, data, "")
    f.reject_unknown(SCENARIO_KEYS)

    mraw = f.value.get("machine") or yamlfile.MDict()
    mf = Fields(path, mraw, "machine", f.at("machine"))
    mf.reject_unknown(MACHINE_KEYS)
    cpus = mf.get("cpus", int, 4)
    if not 1 <= cpus <= MAX_CPUS:
        raise mf.at("cpus").error(f"expected 1 to {MAX_CPUS} CPUs, got {cpus}")
    memory = mf.get("memory", str, "512M")
    if not _MEMORY.match(memory):
        raise mf.at("memory").error(f"expected a size like 512M or 1G, got {memory!r}")
    machine = MachineSettings(cpus, memory, tuple(mf.str_list("cmdline")),
                              tuple(mf.str_list("qemu_args")),
                              float(mf.get("boot_timeout", NUM, 60.0)),
                              bool(mf.get("reboot", bool, False)))
    ctx = Ctx(cpus, memory=size_bytes(memory))

    requires = f.str_list("requires")
    for i, opt in enumerate(requires):
        if not _CONFIG.match(opt):
            raise item_where(path, f.value["requires"], i, f"requires[{i}]").error(
                f"expected a kernel config option like CONFIG_SMP, got {opt!r}")

    steps_raw = f.get("steps", list, required=True)
    if not steps_raw:
        raise f.at("steps").error("a scenario needs at least one step")
    steps = tuple(_parse_steps(path, steps_raw, ctx, "steps", {}, ""))
    expect_raw = f.get("expect", list, [])
    expect = tuple(_parse_expect(path, raw, item_where(path, expect_raw, i, f"expect[{i}]"), i, ctx)
                   for i, raw in enumerate(expect_raw))
    return Scenario(
        name=f.get("name", str, path.stem), path=path, description=f.get("description", str, ""),
        covers=tuple(f.str_list("covers")), machine=machine, requires=tuple(requires),
        steps=steps, expect=expect, also_fails_without=tuple(f.str_list("also_fails_without")),
        skip_arch=archskip.parse(path, f))


def discover(paths: list[Path]) -> list[Path]:
    """Scenario files under the given files and directories, sorted. Files
    reached through a directory must stay inside it (no symlink escapes)."""
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            root = p.resolve()
            for child in sorted(p.rglob("*.yaml")) + sorted(p.rglob("*.yml")):
                if not child.resolve().is_relative_to(root):
                    raise InputError(child, f"resolves outside the scenario directory {p}")
                found.append(child)
        elif p.exists():
            found.append(p)
        else:
            raise InputError(p, "no such file or directory")
    if not found:
        raise InputError(paths[0] if paths else Path("."), "no scenario files (*.yaml) found")
    return found
