"""Scenario files: what to do to a running SMP kernel and what must hold.
Validated completely before any QEMU starts; every error names the file,
line and column."""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from harness.core import names, yamlfile
from harness.core.errors import InputError
from harness.core.yamlfile import Fields, Where, item_where
from harness.expect.kinds_registry import EXPECTATION_KINDS
from harness.expect.report_check import REPORT_TYPES as REPORT_TYPES  # run/runner.py reads it here
from harness.guest import qemuargs
from harness.guest.vcpu_probe import HANG_PROBE
from harness.model import kinds
from harness.scenario import archskip
from harness.scenario import limits as scenario_limits
from harness.scenario.types import Expectation, MachineSettings, Scenario, Step
from harness.steps import fields as vf
from harness.steps.fields import size_bytes
from harness.steps.registry import STEP_TYPES

NUM = vf.NUM

SCENARIO_KEYS = ("name", "description", "covers", "also_fails_without", "machine", "requires",
                 "steps", "expect", "skip_arch")
MACHINE_KEYS = ("cpus", "memory", "cmdline", "qemu_args", "boot_timeout", "reboot", "exclusive")
MAX_CPUS = 8  # CONFIG_NR_CPUS in kernels/configs/riscv-ipi.config
_MEMORY = re.compile(r"^\d+[MG]$")
_CONFIG = re.compile(r"^CONFIG_[A-Z0-9_]+$")


# ------------------------------------------------------------------ schemas
# Step schemas live with their step types (harness/steps/), expectation
# schemas with their kinds (harness/expect/, kinds_registry.py); a field is
# (accepted types, required, default, extra validation or None).


@dataclass
class Ctx:
    cpus: int
    step_names: set[str] = field(default_factory=set)
    snapshot_labels: set[str] = field(default_factory=set)
    probe_labels: set[str] = field(default_factory=set)
    memory: int = 512 << 20
    first: int = 0          # steps numbered before these (default names are "<n>-<kind>")
    # Default step names number the steps in source order, so every round of
    # a repeat gives its step the same base name ("2-sysrq#0", "2-sysrq#1").
    ordinals: dict[str, int] = field(default_factory=dict)


REPEAT_KEYS = ("times", "cpus", "steps")
STEP_COMMON = ("name", "timeout")
ALL_STEP_KINDS = tuple(STEP_TYPES) + ("repeat",)


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
            ordinal = ctx.ordinals.setdefault(f"{context}[{i}]", ctx.first + len(ctx.ordinals))
            out.append(_parse_step(path, _substitute(raw, subst), where, ordinal, ctx,
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
            vf.cpu(c, rf.at("cpus"), ctx)
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
    kinds = [k for k in raw if k in STEP_TYPES]
    unknown = [k for k in raw if k not in STEP_TYPES and k not in STEP_COMMON]
    if unknown:
        raise f.at(str(unknown[0])).error(
            f"unknown key '{unknown[0]}' (step types: {', '.join(ALL_STEP_KINDS)}; "
            f"common keys: {', '.join(STEP_COMMON)})")
    if len(kinds) != 1:
        raise f.where.error(f"a step needs exactly one step type ({', '.join(ALL_STEP_KINDS)}), "
                            f"got {len(kinds)}")
    kind = kinds[0]
    shorthand, schema = STEP_TYPES[kind].shorthand, STEP_TYPES[kind].fields
    args = _fields(path, raw[kind], schema, ctx, f"{f.context}.{kind}", f.at(kind), shorthand)
    name = f.get("name", str, f"{index + 1}-{kind}") + suffix
    if name in ctx.step_names:
        raise f.at("name").error(f"duplicate step name '{name}'")
    ctx.step_names.add(name)
    timeout = float(f.get("timeout", NUM, 30.0))
    scenario_limits.check_timeout(timeout, f.at("timeout"))
    label = args.get("probe") if kind in ("kdb", "panic") else args["label"] if kind == "vcpus" else None
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
    kinds = [k for k in raw if k in EXPECTATION_KINDS]
    unknown = [k for k in raw if k not in EXPECTATION_KINDS and k != "name"]
    if unknown:
        raise f.at(str(unknown[0])).error(
            f"unknown key '{unknown[0]}' (expectation types: {', '.join(EXPECTATION_KINDS)})")
    if len(kinds) != 1:
        raise f.where.error(f"an expectation needs exactly one type ({', '.join(EXPECTATION_KINDS)})")
    kind = kinds[0]
    ekind = EXPECTATION_KINDS[kind]
    if ekind.switch:
        if raw[kind] is not True:
            raise f.at(kind).error(f"expected '{kind}: true'")
        return Expectation(kind, f.get("name", str, kind), {}, f.where)
    args = _fields(path, raw[kind], ekind.fields, ctx, f"expect[{index}].{kind}", f.at(kind))
    ekind.validate(args, Fields(path, raw[kind], f"expect[{index}].{kind}", f.at(kind)), ctx)
    return Expectation(kind, f.get("name", str, None) or default_name(kind, ekind.expected(args)), args, f.where)


# An expectation without a name is named for what it checks, so that the
# line, `show`, JUnit and the report say it (issue 19: 32 of 103 JUnit
# testcases were called "counter-1", "backtrace-2"). Cut to this length.
NAME_MAX = 160


def default_name(kind: str, expected: str) -> str:
    text = f"{kind}: {expected}"
    return text if len(text) <= NAME_MAX else text[:NAME_MAX - 3] + "..."


def _unique_names(path: Path, expect: list[Expectation], raw: Any) -> tuple[Expectation, ...]:
    """Every check is reported and counted by name: two of one name would
    hide one of them. A name the file gives twice is an error; a generated
    one that repeats gets ' (2)', ' (3)'."""
    seen: set[str] = set()
    out = []
    for i, (exp, item) in enumerate(zip(expect, raw)):
        name = exp.name
        if name in seen:
            if isinstance(item, dict) and "name" in item:
                raise Fields(path, item, f"expect[{i}]", exp.where).at("name").error(
                    f"duplicate expectation name '{name}'")
            n = 2
            while f"{name} ({n})" in seen:
                n += 1
            name = f"{name} ({n})"
            exp = dataclasses.replace(exp, name=name)
        seen.add(name)
        out.append(exp)
    return tuple(out)


IMPLICIT_CHECKS = ("kernel boots to a shell", "all CPUs came online at boot", "guest responded", "kernel did not crash")


def _also_fails(path: Path, f: Fields, expect: tuple[Expectation, ...]) -> dict[str, tuple[tuple[str, ...], str]]:
    """also_fails_without: {<commit>: {checks: [<check name>, ...], why: <text>}}.
    A baseline kernel without <commit> may fail this scenario, but only
    through exactly those checks, for the reason given."""
    raw = f.get("also_fails_without", dict, {})
    known = {e.name for e in expect} | set(IMPLICIT_CHECKS)
    out: dict[str, tuple[tuple[str, ...], str]] = {}
    for commit, body in raw.items():
        where = f.at("also_fails_without")
        bf = Fields(path, body, f"also_fails_without.{commit}", where)
        if not isinstance(body, dict):
            raise where.error(f"{commit}: expected {{checks: [<check names>], why: <reason>}}")
        bf.reject_unknown(("checks", "why"))
        checks = tuple(bf.str_list("checks"))
        why = bf.get("why", str, required=True)
        if not checks:
            raise bf.at("checks").error("name the checks expected to fail")
        for name in checks:
            if name not in known:
                raise bf.at("checks").error(f"no check named {name!r} (expectations: "
                                            f"{', '.join(sorted(known))})")
        if not why.strip():
            raise bf.at("why").error("say why those checks fail without it")
        out[str(commit)] = (checks, why)
    return out


def load(path: Path) -> Scenario:
    data = yamlfile.load(path)
    f = Fields(path, data, "")
    f.reject_unknown(SCENARIO_KEYS)
    name = f.get("name", str, path.stem)
    if problem := names.problem(name):
        raise (f.at("name") if "name" in f.value else Where(path, 1, None, "name")).error(
            problem + ("" if "name" in f.value else "; the file name gives it: add a 'name:'"))

    mraw = f.value.get("machine") or yamlfile.MDict()
    mf = Fields(path, mraw, "machine", f.at("machine"))
    mf.reject_unknown(MACHINE_KEYS)
    cpus = mf.get("cpus", int, 4)
    if not 1 <= cpus <= MAX_CPUS:
        raise mf.at("cpus").error(f"expected 1 to {MAX_CPUS} CPUs, got {cpus}")
    memory = mf.get("memory", str, "512M")
    if not _MEMORY.match(memory):
        raise mf.at("memory").error(f"expected a size like 512M or 1G, got {memory!r}")
    if size_bytes(memory) <= 0:
        raise mf.at("memory").error(f"expected a positive size like 512M or 1G, got {memory!r}")
    boot_timeout = float(mf.get("boot_timeout", NUM, 60.0))
    scenario_limits.check_timeout(boot_timeout, mf.at("boot_timeout"))
    qemu_args = mf.str_list("qemu_args")
    qemuargs.check_scenario(path, mf.value.get("qemu_args"), qemu_args, mf.at("qemu_args"))
    machine = MachineSettings(cpus, memory, tuple(mf.str_list("cmdline")), tuple(qemu_args),
                              boot_timeout,
                              bool(mf.get("reboot", bool, False)), bool(mf.get("exclusive", bool, False)))
    ctx = Ctx(cpus, memory=size_bytes(memory))

    requires = f.str_list("requires")
    for i, opt in enumerate(requires):
        if not _CONFIG.match(opt):
            raise item_where(path, f.value["requires"], i, f"requires[{i}]").error(
                f"expected a kernel config option like CONFIG_SMP, got {opt!r}")

    steps_raw = f.get("steps", list, required=True)
    if not steps_raw:
        raise f.at("steps").error("a scenario needs at least one step")
    scenario_limits.check_step_total(path, steps_raw, f.at("steps"))   # before expanding
    steps = tuple(_parse_steps(path, steps_raw, ctx, "steps", {}, ""))
    expect_raw = f.get("expect", list, [])
    expect = _unique_names(path, [_parse_expect(path, raw, item_where(path, expect_raw, i, f"expect[{i}]"), i, ctx)
                                  for i, raw in enumerate(expect_raw)], expect_raw)
    return Scenario(
        name=name, path=path, description=f.get("description", str, ""),
        covers=tuple(f.str_list("covers")), machine=machine, requires=tuple(requires),
        steps=steps, expect=expect, also_fails_without=_also_fails(path, f, expect),
        skip_arch=archskip.parse(path, f))


def as_steps(items: Iterable[Any], cpus: int = MAX_CPUS, first: int = 0) -> list[Step]:
    """Steps given in code (tests, `explain`, the model) in the scenario
    file's own form: the same validation, repeat expansion and names as a
    scenario file. Step objects pass through."""
    path = Path("<steps>")
    ctx = Ctx(cpus, first=first)
    out: list[Step] = []
    for raw in items:
        if isinstance(raw, Step):
            ctx.step_names.add(raw.name)
            out.append(raw)
            continue
        where = Where(path, None, None, f"steps[{len(out)}]")
        if not isinstance(raw, Mapping):
            raise where.error(f"expected a step mapping, got {raw!r}")
        out.extend(_parse_steps(path, [raw], ctx, f"steps[{len(out)}]", {}, ""))
    return out


def make_step(kind: str, name: str | None = None, timeout: float = 30.0, **args: Any) -> Step:
    """A Step built in code, its type's defaults filled in (unchecked: the
    model is also asked about steps no scenario file could hold)."""
    return Step(kind, name or kind, timeout, {**STEP_TYPES[kind].defaults(), **args},
                Where(Path("<steps>"), None, None, name or kind))


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


# The model expands raw steps through the loader (harness/model/kinds.py).
kinds.register_expander(as_steps)
