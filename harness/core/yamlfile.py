"""YAML loading that remembers where every key and item came from, so that
validation errors can name the file, line and column."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

from harness.core.errors import InputError


class MDict(dict):
    """A mapping with the position of itself and of each key."""
    line: int = 0
    column: int = 0
    key_pos: dict[Any, tuple[int, int]]


class MList(list):
    line: int = 0
    column: int = 0
    item_pos: list[tuple[int, int]]


# Limits applied while reading, before anything is validated. A scenario or
# recipe is a few KiB (the largest shipped, 6 KiB). PyYAML builds an aliased
# node once and shares it, but validation walks the expanded tree: 7 nested
# 10-fold aliases in 460 bytes took 9.8 s and 691 MB before they were refused
# (measured on bb27a38). So the expanded size is counted, shared nodes once
# each, and a file past MAX_ITEMS is refused before anything walks it.
MAX_BYTES = 1 << 20
MAX_ITEMS = 100_000


class _Loader(yaml.SafeLoader):
    pass


def expanded_items(value: Any, memo: dict[int, int] | None = None) -> int:
    """Mapping keys and list items in value with every alias expanded,
    counted in time proportional to the distinct nodes."""
    memo = {} if memo is None else memo
    if not isinstance(value, (dict, list)):
        return 0
    if id(value) in memo:
        return memo[id(value)]
    children = value.values() if isinstance(value, dict) else value
    n = len(value) + sum(expanded_items(c, memo) for c in children)
    memo[id(value)] = n
    return n


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> MDict:
    out = MDict()
    out.line, out.column = node.start_mark.line + 1, node.start_mark.column + 1
    out.key_pos = {}
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            raise InputError(loader.name, f"duplicate key '{key}'",
                             key_node.start_mark.line + 1, key_node.start_mark.column + 1)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_pos[key] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
    return out


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> MList:
    out = MList(loader.construct_object(child, deep=True) for child in node.value)
    out.line, out.column = node.start_mark.line + 1, node.start_mark.column + 1
    out.item_pos = [(c.start_mark.line + 1, c.start_mark.column + 1) for c in node.value]
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load(path: Path) -> Any:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except IsADirectoryError:
        raise InputError(path, "is a directory, expected a YAML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read: {exc}") from None
    if len(text.encode()) > MAX_BYTES:
        raise InputError(path, f"{len(text.encode()):,} bytes; a scenario or recipe file may have at most "
                               f"{MAX_BYTES:,}")
    loader = _Loader(text)
    loader.name = str(path)
    try:
        data = loader.get_single_data()
        if (n := expanded_items(data)) > MAX_ITEMS:
            raise InputError(path, f"{n:,} mapping keys and list items once aliases are expanded; at most "
                                   f"{MAX_ITEMS:,} (an alias bomb?)", getattr(data, "line", None))
        return data
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        raise InputError(path, f"malformed YAML: {exc.problem or exc.context}", line, col) from None
    except yaml.YAMLError as exc:
        raise InputError(path, f"malformed YAML: {exc}") from None
    except RecursionError:
        # PyYAML composes recursively: thousands of nested [ or { exhaust the stack.
        raise InputError(path, "malformed YAML: nested too deeply") from None
    finally:
        loader.dispose()


@dataclass
class Where:
    """A position in a YAML file, for error messages."""
    path: Path
    line: int | None = None
    column: int | None = None
    context: str = ""

    def error(self, message: str) -> InputError:
        prefix = f"{self.context}: " if self.context else ""
        return InputError(self.path, prefix + message, self.line, self.column)


class Fields:
    """Typed access to a mapping's keys, rejecting unknown ones with a position."""

    def __init__(self, path: Path, value: Any, context: str, where: Where | None = None) -> None:
        self.path = path
        self.context = context
        here = where or Where(path, getattr(value, "line", None), getattr(value, "column", None))
        if not isinstance(value, dict):
            raise Where(path, here.line, here.column, context).error(
                f"expected a mapping, got {_kind(value)}")
        self.value: MDict = value  # type: ignore[assignment]
        self.where = Where(path, here.line, here.column, context)

    def at(self, key: str) -> Where:
        pos = getattr(self.value, "key_pos", {}).get(key)
        if pos is None:
            return self.where
        return Where(self.path, pos[0], pos[1], f"{self.context}.{key}" if self.context else key)

    def reject_unknown(self, allowed: Iterable[str]) -> None:
        allowed = list(allowed)
        for key in self.value:
            if key not in allowed:
                raise self.at(str(key)).error(
                    f"unknown key '{key}' (expected one of: {', '.join(allowed)})")

    def get(self, key: str, types: type | tuple[type, ...], default: Any = None,
            required: bool = False) -> Any:
        if key not in self.value or self.value[key] is None:
            if required:
                raise self.where.error(f"missing required key '{key}'")
            return default
        val = self.value[key]
        if isinstance(val, bool) and bool not in _as_tuple(types):
            raise self.at(key).error(f"expected {_type_names(types)}, got a boolean")
        if not isinstance(val, types):
            raise self.at(key).error(f"expected {_type_names(types)}, got {_kind(val)}")
        if isinstance(val, float) and not math.isfinite(val):
            # YAML's .nan and .inf: every comparison with nan is false, so a
            # bound of nan passes whatever was measured, and a timeout of
            # inf never detects a hang. No field means either.
            raise self.at(key).error(f"expected a finite number, got {val}")
        return val

    def str_list(self, key: str) -> list[str]:
        val = self.get(key, (list, str), default=[])
        if isinstance(val, str):
            return [val]
        for i, item in enumerate(val):
            if not isinstance(item, str):
                line, col = val.item_pos[i] if hasattr(val, "item_pos") else (None, None)
                raise Where(self.path, line, col, f"{self.context}.{key}[{i}]").error(
                    f"expected a string, got {_kind(item)}")
        return list(val)


def item_where(path: Path, seq: Any, index: int, context: str) -> Where:
    pos = getattr(seq, "item_pos", None)
    if pos and index < len(pos):
        return Where(path, pos[index][0], pos[index][1], context)
    return Where(path, getattr(seq, "line", None), None, context)


def _as_tuple(t: type | tuple[type, ...]) -> tuple[type, ...]:
    return t if isinstance(t, tuple) else (t,)


def _type_names(t: type | tuple[type, ...]) -> str:
    names = {dict: "a mapping", list: "a list", str: "a string", int: "an integer",
             float: "a number", bool: "a boolean"}
    return " or ".join(names.get(x, x.__name__) for x in _as_tuple(t))


def _kind(v: Any) -> str:
    if v is None:
        return "nothing"
    for t in (bool, dict, list, str, int, float):
        if isinstance(v, t):
            return _type_names(t)
    return type(v).__name__
