"""Limits applied while a YAML file is read, before validation walks it
(issue 20): an alias bomb and an oversized file are refused with one line."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.core import yamlfile
from harness.core.errors import InputError

LEVELS = "abcdefg"


def _bomb(levels: int) -> str:
    lines = ["name: bomb", "a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for prev, cur in zip(LEVELS, LEVELS[1:levels]):
        lines.append(f"{cur}: &{cur} [{', '.join(['*' + prev] * 10)}]")
    lines += ["steps:", f"  - bogus: *{LEVELS[levels - 1]}"]
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_before_anything_walks_it(tmp_path: Path) -> None:
    f = tmp_path / "bomb.yaml"
    f.write_text(_bomb(7))                  # about 460 bytes, 23 million items expanded
    assert len(f.read_bytes()) < 600
    with pytest.raises(InputError, match=r"23,456,791 mapping keys and list items once aliases are expanded"):
        yamlfile.load(f)


def test_aliases_within_the_limit_still_load(tmp_path: Path) -> None:
    f = tmp_path / "small.yaml"
    f.write_text(_bomb(3))                  # 1,000 items: fine
    data = yamlfile.load(f)
    assert yamlfile.expanded_items(data) < yamlfile.MAX_ITEMS


def test_an_oversized_file_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "big.yaml"
    f.write_text("name: big\ndescription: " + "x" * yamlfile.MAX_BYTES + "\n")
    with pytest.raises(InputError, match="a scenario or recipe file may have at most"):
        yamlfile.load(f)
