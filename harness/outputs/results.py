"""summary.json, and a run read back from its artifact directory: the one
source the JUnit, the HTML report and `rvharness show` are made from, so a
report can be remade from a run directory at any time."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.core.errors import InputError
from harness.outputs.excerpt import locate

if TYPE_CHECKING:
    from harness.expect.result import ScenarioResult

SUMMARY = "summary.json"
MODEL_PREFIX = "model: "
EXPECTATION, MODEL = "expectation", "model"


def origin(check: dict[str, Any]) -> str:
    """Whose claim a check is: the reference model's, or the scenario's own
    expectation (harness checks such as 'guest responded' count with those).
    A CheckResult.origin, once it exists, wins over the name's prefix."""
    given = check.get("origin")
    if given:
        return MODEL if given == MODEL else EXPECTATION
    return MODEL if check["name"].startswith(MODEL_PREFIX) else EXPECTATION


def summary_entry(r: "ScenarioResult") -> dict[str, Any]:
    return {"scenario": r.scenario.name, "kernel": r.kernel, "verdict": r.verdict,
            "reason": r.reason, "seconds": round(r.seconds, 2),
            "file": str(r.scenario.path), "covers": list(r.scenario.covers),
            "boot_retries": getattr(r, "boot_retries", 0),
            # Host wall clock (Unix time): when the cell ran and its QEMU lived,
            # so a reviewer of a -j run sees which VMs shared the host.
            "started_at": _stamp(r.started_at), "ended_at": _stamp(r.ended_at),
            "qemu_spans": [list(s) for s in r.qemu_spans],
            "artifacts": str(r.artifacts) if r.artifacts else None,
            "checks": [c.to_json() for c in r.checks],
            # run --repeats: every attempt and each check's counts (harness/run/attempts.py)
            **({"repeats": r.repeats} if getattr(r, "repeats", None) else {})}


def _stamp(t: float | None) -> float | None:
    return None if t is None else round(t, 3)


def write_summary(results: list["ScenarioResult"], path: Path) -> None:
    path.write_text(json.dumps([summary_entry(r) for r in results], indent=2))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@dataclass
class SavedRun:
    """One scenario on one kernel, as its artifacts recorded it."""
    scenario: str
    kernel: str
    verdict: str
    reason: str
    seconds: float
    artifacts: Path | None
    checks: list[dict[str, Any]] = field(default_factory=list)
    file: str = ""
    covers: list[str] = field(default_factory=list)
    boot_retries: int = 0
    # run --repeats: attempts and counts; the artifacts are then the
    # attempts' parent, and the log and observations the primary attempt's.
    repeats: dict[str, Any] | None = None

    @property
    def primary(self) -> Path | None:
        """The directory of the run's console log and observations."""
        if self.artifacts is None or not self.repeats:
            return self.artifacts
        return self.artifacts / self.repeats["primary"]

    @property
    def console_log(self) -> Path | None:
        p = self.primary / "console.log" if self.primary else None
        return p if p is not None and p.exists() else None

    @cached_property
    def raw_console(self) -> str:
        """console.log as written: the offsets in observations.json index it."""
        log = self.console_log
        if log is None:
            return ""
        # newline="": the serial console ends lines with \r\r\n, which
        # universal newlines would read as two lines.
        with open(log, encoding="utf-8", errors="replace", newline="") as fh:
            return fh.read()

    @cached_property
    def console(self) -> str:
        """Without \r: line numbers are those of the parsers
        (harness/parsers/console_lines.py)."""
        return self.raw_console.replace("\r", "")

    def locate(self, check: dict[str, Any]):
        """Where check shows in the console (outputs/excerpt.py)."""
        return locate(self.console, check, self.observations, self.raw_console)

    @cached_property
    def observations(self) -> dict[str, Any]:
        return (_read_json(self.primary / "observations.json") if self.primary else None) or {}

    @cached_property
    def predictions(self) -> dict[str, Any]:
        return (_read_json(self.primary / "predictions.json") if self.primary else None) or {}

    def by_origin(self, which: str) -> list[dict[str, Any]]:
        return [c for c in self.checks if origin(c) == which]

    def failures(self) -> list[dict[str, Any]]:
        return [c for c in self.checks if c["verdict"] in ("fail", "error")]


def load(out: Path) -> list[SavedRun]:
    """The runs of an earlier `run` or `matrix`, from OUT/summary.json."""
    doc = _read_json(out / SUMMARY)
    if not isinstance(doc, list):
        raise InputError(out / SUMMARY, "not found or not a run summary; expected the artifact "
                                        "directory of an earlier `rvharness run` or `matrix`")
    runs = []
    for i, d in enumerate(doc):
        try:
            art = Path(d["artifacts"]) if d.get("artifacts") else None
            if art is not None and not art.is_absolute() and not art.exists():
                art = out / art   # a summary written with paths relative to another cwd
            runs.append(SavedRun(d["scenario"], d["kernel"], d["verdict"], d.get("reason", ""),
                            float(d.get("seconds", 0.0)), art, list(d.get("checks", [])),
                            d.get("file", ""), list(d.get("covers", [])), int(d.get("boot_retries", 0)),
                            d.get("repeats") or None))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(out / SUMMARY, f"entry {i}: missing or bad key {exc}") from None
    return runs


def matrix_cells(out: Path) -> list[dict[str, Any]] | None:
    doc = _read_json(out / "matrix.json")
    return doc if isinstance(doc, list) else None
