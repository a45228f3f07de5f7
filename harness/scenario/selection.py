"""Choosing scenarios: `-k EXPR` as pytest -k reads it (words, and/or/not,
parentheses; a word matches a scenario whose name, file name or one of
whose `covers:` commits contains it, case-insensitively), and `--list`,
which says what would run and why the rest would not."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Callable

from harness.core.errors import InputError
from harness.kernel import kconfig
from harness.scenario.types import Scenario

_TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")


def _tokens(expr: str) -> list[str]:
    pos, out = 0, []
    expr = expr.rstrip()
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None:
            break
        out.append(m.group(1))
        pos = m.end()
    return out


def compile_expr(expr: str) -> Callable[[Scenario], bool]:
    """expr -> predicate; a bad expression is an InputError naming -k."""
    toks = _tokens(expr)
    pos = 0

    def fail(why: str) -> InputError:
        return InputError(None, f"-k '{expr}': {why} (expected words joined by and, or, not, "
                                f"with parentheses)")

    def peek() -> str | None:
        return toks[pos] if pos < len(toks) else None

    def take() -> str:
        nonlocal pos
        tok = peek()
        if tok is None:
            raise fail("ends too early")
        pos += 1
        return tok

    def parse_or() -> Callable[[Scenario], bool]:
        left = parse_and()
        while peek() == "or":
            take()
            a, b = left, parse_and()
            left = lambda s, a=a, b=b: a(s) or b(s)
        return left

    def parse_and() -> Callable[[Scenario], bool]:
        left = parse_not()
        while peek() == "and":
            take()
            a, b = left, parse_not()
            left = lambda s, a=a, b=b: a(s) and b(s)
        return left

    def parse_not() -> Callable[[Scenario], bool]:
        if peek() == "not":
            take()
            inner = parse_not()
            return lambda s: not inner(s)
        tok = take()
        if tok == "(":
            inner = parse_or()
            if take() != ")":
                raise fail("unbalanced parenthesis")
            return inner
        if tok in (")", "and", "or"):
            raise fail(f"unexpected '{tok}'")
        word = tok.lower()
        return lambda s: matches(s, word)

    if not toks:
        raise fail("empty expression")
    pred = parse_or()
    if pos != len(toks):
        raise fail(f"unexpected '{toks[pos]}'")
    return pred


def matches(scn: Scenario, word: str) -> bool:
    names = [scn.name, scn.path.stem, *scn.covers]
    return any(word in n.lower() for n in names)


@dataclass
class Planned:
    scenario: Scenario
    kernel: str
    runs: bool
    why: str          # why it runs ("matches -k 'x'") or why not


def plan(scenarios: list[Scenario], expr: str | None,
         kernels: list[tuple[str, dict[str, str] | None]]) -> list[Planned]:
    """What `run` would do, per kernel (name, its .config when known without building)."""
    pred = compile_expr(expr) if expr is not None else None
    out = []
    for name, config in kernels:
        for scn in scenarios:
            if pred is not None and not pred(scn):
                out.append(Planned(scn, name, False, f"deselected by -k '{expr}'"))
                continue
            lacking = [o for o in scn.requires if config is not None and not kconfig.has(config, o)]
            if lacking:
                out.append(Planned(scn, name, False, f"would be skipped: kernel lacks {', '.join(lacking)}"))
            elif scn.requires and config is None:
                out.append(Planned(scn, name, True, f"runs; requires {', '.join(scn.requires)} "
                                                    f"(checked once the kernel is built)"))
            else:
                out.append(Planned(scn, name, True, f"runs ({len(scn.steps)} steps, "
                                                    f"{len(scn.expect)} expectations)"))
    return out


def format_plan(planned: list[Planned]) -> str:
    width = max((len(p.scenario.name) for p in planned), default=0)
    lines = []
    for p in planned:
        mark = "run " if p.runs else "skip"
        where = os.path.relpath(p.scenario.path) if p.scenario.path.is_absolute() else p.scenario.path
        lines.append(f"{mark}  {p.scenario.name:<{width}}  [{p.kernel}]  {p.why}  ({where})")
    n = sum(p.runs for p in planned)
    lines.append(f"{n} of {len(planned)} would run")
    return "\n".join(lines)
