"""Everything the parsers find in one console log, as one JSON-ready dict
(what observations.json records). The log is split into lines once."""
from __future__ import annotations

from pathlib import Path

from harness.parsers import backtrace, klog, reports
from harness.parsers import kdb_session as kdb
from harness.parsers.symbolize import SystemMap

FORMAT = 1


def observe(text: str, cpus: int | None = None, system_map: Path | str | SystemMap | None = None,
            found: list[reports.Report] | None = None) -> dict:
    """Backtrace rounds, kdb sessions and kernel reports in text. cpus: the
    guest's CPU count (kdb leaves trailing offline CPUs out). system_map:
    improves guilty frames. found: the reports of text, when the caller
    parsed them already (harness/expect/observations.py). Never raises on any text."""
    symbols = system_map if isinstance(system_map, SystemMap) else SystemMap.load(system_map)
    lines = klog.split(text)
    truncated = klog.cut_off(text, lines)
    rounds = backtrace.parse_all(lines, truncated)
    session = kdb.parse(lines, cpus, truncated)
    if found is None:
        found = reports.parse(lines, symbols, truncated)
    return {
        "format": FORMAT,
        "lines": len(lines),
        "log_mode": klog.mode(lines),
        "truncated": truncated,
        "backtraces": [r.to_json() for r in rounds],
        "kdb": session.to_json(),
        "reports": [r.to_json() for r in found],
        "titles": reports.titles(found),
        "corrupted": (any(r.corrupted for r in rounds) or session.corrupted
                      or any(r.corrupted for r in found)),
    }
