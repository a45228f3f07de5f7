"""Golden console logs: every file in tests/data/console/ is a real console
log captured from the guest (tests/data/capture_console.py regenerates
them) with a header saying what the parsers must find in it.

File format:

    # about: what the log shows (free text, kept by --update-golden)
    # source: {kernel: default, cpus: 4, cmdline: ..., derived: ...}
    # expect:
    #   ...summary() of observe() on the log, see below...
    # ---
    <the raw console log, byte for byte as captured>

Header lines start with "# " and together are YAML; the first line that is
exactly "# ---" ends the header. The raw log is everything after it.

`pytest tests/parsers/test_golden.py --update-golden` rewrites `expect:` from the
current parsers (about/source and the log are kept). Review the diff by eye
against the log: a header that records a parser bug is a defect.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from golden_files import split_golden, write_golden

from harness.parsers import observe
from harness.parsers.symbolize import SystemMap

DATA = Path(__file__).resolve().parents[1] / "data"
CONSOLE = DATA / "console"
# Symbols of each kernel the golden logs were captured with, cut down to
# those the logs mention (capture_console.py --make-map KERNEL SYSTEM_MAP).


def system_map(kernel: str | None) -> SystemMap | None:
    return SystemMap.load(DATA / f"riscv64-6.12.107-{kernel}.map") if kernel else None
FILES = sorted(CONSOLE.glob("*.log"))


def _names(frames: list[str]) -> list[str]:
    return [f.partition("+")[0] for f in frames]


def _short(frames: list[str], keep: int = 3) -> list[str]:
    names = _names(frames)
    return names if len(names) <= 2 * keep + 1 else names[:keep] + ["..."] + names[-keep:]


def summary(obs: dict) -> dict:
    """What the header records: the facts a reviewer checks against the
    log. Frame offsets are left out of lists to keep headers readable;
    offsets and addresses are covered by the symbolizer test."""
    out: dict = {"log_mode": obs["log_mode"], "truncated": obs["truncated"],
                 "corrupted": obs["corrupted"]}
    if obs["backtraces"]:
        out["backtraces"] = []
        for r in obs["backtraces"]:
            cpus = {}
            for c, b in r["cpus"].items():
                entry: dict = {"form": b["form"], "lines": b["lines"]}
                if b["idle_at"]:
                    entry["at"] = b["idle_at"]
                if b["comm"]:
                    entry["task"] = f'{b["comm"]}:{b["pid"]}'
                if b["mode"]:
                    entry["mode"] = b["mode"]
                if b["pc"]:
                    entry["pc"] = b["pc"]
                if b["frames"]:
                    entry["frames"] = _names(b["frames"])
                if b["truncated"]:
                    entry["truncated"] = True
                cpus[int(c)] = entry
            rnd: dict = {"trigger": r["trigger"], "sender": r["sender"],
                         "targets": r["targets"], "missing": r["missing"], "cpus": cpus}
            if r["corrupted"]:
                rnd["problems"] = r["problems"]
            out["backtraces"].append(rnd)
    k = obs["kdb"]
    if k["sessions"]:
        sessions = []
        for s in k["sessions"]:
            entry = {"cpu": s["cpu"], "pid": s["pid"], "reason": s["reason"], "lines": s["lines"],
                     "commands": [c["command"] for c in s["commands"]]}
            for key in ("go", "no_task", "no_process", "notes"):
                if s[key]:
                    entry[key] = s[key]
            if s["pager_prompts"]:
                entry["pager_prompts"] = s["pager_prompts"]
            if s["statuses"]:
                entry["listed"] = [st["listed"] for st in s["statuses"]]
            if s["traces"]:
                entry["traces"] = [{"pid": t["pid"], "cpu": t["cpu"], "comm": t["comm"],
                                    "state": t["state"], "by": t["command"],
                                    "frames": _short(t["frames"])} for t in s["traces"]]
            sessions.append(entry)
        out["kdb"] = {"states": {int(c): st for c, st in k["states"].items()},
                      "go_refused": k["go_refused"], "sessions": sessions}
        if k["corrupted"]:
            out["kdb"]["problems"] = k["problems"]
    if obs["reports"]:
        out["reports"] = [{"type": r["type"], "title": r["title"], "cpu": r["cpu"],
                           "guilty": r["guilty_frame"], "lines": r["lines"],
                           **({"problems": r["problems"]} if r["corrupted"] else {})}
                          for r in obs["reports"]]
    return out


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_golden(path: Path, update_golden: bool) -> None:
    header, raw = split_golden(path)
    source = header.get("source") or {}
    symbols = system_map(source.get("kernel"))
    got = summary(observe.observe(raw.decode("utf-8", errors="replace"),
                                  cpus=source.get("cpus"), system_map=symbols))
    if update_golden:
        header["expect"] = got
        write_golden(path, header, raw)
        return
    assert header.get("expect") is not None, (
        f"{path.name} has no expectations yet: run with --update-golden and review them")
    assert got == header["expect"]

