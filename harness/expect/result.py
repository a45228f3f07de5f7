"""One scenario's result on one kernel: its verdict and every check, what
the runner returns and every output (summary.json, JUnit, the report, the
terminal) is made from."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.expect.checks import ERROR, EXPECTATION, FAIL, MODEL, NOT_COMPARED, PASS, CheckResult
from harness.scenario.types import Scenario


@dataclass
class ScenarioResult:
    scenario: Scenario
    kernel: str
    verdict: str
    checks: list[CheckResult] = field(default_factory=list)
    seconds: float = 0.0
    artifacts: Path | None = None
    reason: str = ""
    boot_retries: int = 0
    model_only: bool = False
    unexpected_reports: list[str] = field(default_factory=list)   # "type on CPU n: title"
    # Host wall clock (Unix time) when the cell started and ended, and each
    # QEMU's [start, end] (observations.qemu_spans): under -j, who ran beside whom.
    started_at: float | None = None
    ended_at: float | None = None
    qemu_spans: list[list[float]] = field(default_factory=list)
    # Of boot_retries, the runs whose QEMU died of someone else's signal (run
    # again). Last: a resumed run rebuilds results from cells/*.json by position.
    infra_retries: int = 0
    # The console logs of the attempts a retry replaced (names in artifacts).
    retried_logs: list[str] = field(default_factory=list)

    @property
    def bringup_retries(self) -> int:
        """Boots tried again because a CPU missed bring-up (not QEMU deaths)."""
        return self.boot_retries - self.infra_retries

    def counts(self) -> dict[str, tuple[int, int]]:
        """(passed, judged) per origin; not-compared claims are not judged."""
        out: dict[str, tuple[int, int]] = {}
        for origin in (EXPECTATION, MODEL):
            judged = [c for c in self.checks if c.origin == origin and c.verdict != NOT_COMPARED]
            out[origin] = (sum(c.verdict == PASS for c in judged), len(judged))
        return out

    def summary(self) -> str:
        """'3/3 expectations, 52/52 model claims (4 not compared)'."""
        c = self.counts()
        text = f"{c[EXPECTATION][0]}/{c[EXPECTATION][1]} expectations"
        if self.model_only:
            # Only what the runner saw the kernel do is judged beside the
            # model (a crash, a hang): named, so 0/1 is not read as a
            # scenario expectation.
            own = [ch.name for ch in self.checks if ch.origin == EXPECTATION and ch.verdict == FAIL]
            text = "expectations not evaluated (--model-only)" + (f", failed: {', '.join(own)}" if own else "")
        text += f", {c[MODEL][0]}/{c[MODEL][1]} model claims"
        nc = sum(ch.verdict == NOT_COMPARED for ch in self.checks)
        if nc:
            text += f" ({nc} not compared)"
        if self.boot_retries:
            text += f", boot retried {self.boot_retries}x"
        if self.unexpected_reports:
            text += f", {len(self.unexpected_reports)} unexpected kernel report(s): {self.unexpected_reports[0]}"
        return text

    @property
    def console_log(self) -> Path | None:
        return self.artifacts / "console.log" if self.artifacts else None

    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if c.verdict in (FAIL, ERROR)]
