"""The bisect's step log, OUT/steps.jsonl: every build, run and verdict as it
happens, and what a resumed bisect recalls from it (its tested commits, the
failure signature, its builds, runs and time over every session)."""
from __future__ import annotations

import datetime as dt
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from harness.decide.bisect_step import Signature
from harness.run.repeats import SuiteRun


@dataclass
class Tested:
    """One tested commit: a step of the bisect."""
    step: int
    commit: str
    short: str
    subject: str
    role: str                  # "good endpoint", "bad endpoint", "bisect", "parent", "culprit", "revert"
    verdict: str
    reason: str
    image: str = ""
    key: str = ""
    build: str = ""            # built / build-failed / patch-failed
    build_seconds: float = 0.0
    build_cached: bool = False
    same_image_as: str = ""
    clean: int = 0
    signature: int = 0
    unrelated: int = 0
    infra: int = 0
    boots: int = 0             # runs done for this step (not reused)
    seconds: float = 0.0
    time: str = ""

    @property
    def counts(self) -> str:
        return f"{self.clean}/{self.signature}/{self.unrelated}/{self.infra}"


class StepLog:
    """OUT/steps.jsonl: one JSON object per line, flushed and fsynced as
    each build, run and verdict happens. A line cut by a kill is ignored."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: list[dict] = []
        if path.exists():
            text = path.read_text()
            if text and not text.endswith("\n"):
                # Cut by a kill mid-write: drop the partial line so the next record starts clean.
                text = text[:text.rfind("\n") + 1]
                path.write_text(text)
            for line in text.splitlines():
                try:
                    self.records.append(json.loads(line))
                except ValueError:
                    continue

    def append(self, rec: dict) -> None:
        rec = {"time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), **rec}
        self.records.append(rec)
        with open(self.path, "a") as fh:
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def of(self, kind: str) -> list[dict]:
        return [r for r in self.records if r.get("type") == kind]


class Resume:
    """The Bisector's memory in its step log (self.log, a StepLog): what a
    killed bisect already knew, and the work of every session so far."""

    def _recall(self) -> None:
        """Builds, runs, steps and the signature the step log already holds (for --resume)."""
        self.builds: dict[str, dict] = {r["commit"]: r for r in self.log.of("build")}
        self.runs: dict[str, list[SuiteRun]] = {}
        for r in self.log.of("run"):
            self.runs.setdefault(r["image"], []).append(SuiteRun.from_json(r["run"]))
        self.done: dict[tuple[str, str], Tested] = {}
        for r in self.log.of("step"):
            t = Tested(**{k: v for k, v in r.items() if k in Tested.__dataclass_fields__})
            self.done[(t.commit, t.role)] = t
        sig = self.log.of("signature")
        self.signature: Signature | None = Signature.from_json(sig[-1]["signature"]) if sig else None

    def _totals(self) -> dict:
        """Builds, boots and time over every session of this bisect, from the
        step log (so that a resumed bisect reports all the work it took)."""
        builds = [r for r in self.log.of("build") if not r.get("cached")]
        runs = self.log.of("run")
        # The current session's span is measured, not read: the last session record is ours.
        last = max(i for i, r in enumerate(self.log.records) if r.get("type") == "session")
        earlier = 0.0
        sessions = 0
        span: list[dt.datetime] = []
        for i, r in enumerate(self.log.records[:last]):
            # A log written before session records began is one session.
            if i == 0 or r.get("type") == "session":
                if span:
                    earlier += (span[-1] - span[0]).total_seconds()
                span = []
                sessions += 1
            span.append(dt.datetime.fromisoformat(r["time"]))
        if span:
            earlier += (span[-1] - span[0]).total_seconds()
        return {"wall_seconds": round(earlier + time.monotonic() - self.t0, 1), "builds": len(builds),
                "build_seconds": round(sum(r.get("seconds", 0) for r in builds), 1),
                "build_wait_seconds": round(sum(r.get("waited", 0) for r in self.log.of("build")), 1),
                "boots": len(runs), "boot_seconds": round(sum(r["run"].get("seconds", 0) for r in runs), 1),
                "sessions": sessions + 1}
