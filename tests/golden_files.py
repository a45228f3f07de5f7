"""Golden console logs (tests/data/console/*.log): a short YAML header,
each line behind '# ', above the real log, ended by a '# ---' line. Shared
by the parser, model and judging tests."""
from __future__ import annotations

from pathlib import Path

import yaml

SEPARATOR = b"\n# ---\n"


def split_golden(path: Path) -> tuple[dict, bytes]:
    data = path.read_bytes()
    if data.startswith(b"# ---\n"):
        return {}, data[6:]
    at = data.find(SEPARATOR)
    assert at >= 0, f"{path.name}: no '# ---' line ends the header"
    header_lines = data[:at].decode("utf-8").split("\n")
    assert all(ln.startswith("#") for ln in header_lines), f"{path.name}: header line without '#'"
    header = yaml.safe_load("\n".join(ln[2:] for ln in header_lines)) or {}
    return header, data[at + len(SEPARATOR):]


def write_golden(path: Path, header: dict, raw: bytes) -> None:
    text = yaml.safe_dump(header, sort_keys=False, width=100, default_flow_style=None,
                          allow_unicode=False)
    head = "".join(f"# {ln}".rstrip() + "\n" for ln in text.splitlines())
    path.write_bytes(head.encode("utf-8") + b"# ---\n" + raw)
