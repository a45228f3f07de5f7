"""`run --repeats N`: one scenario N times on one kernel, each attempt a
fresh boot through runner.run_scenario in its own directory
(OUT/<kernel>/<scenario>/run-<i>/, never overwritten), and the one result
the outputs show for them.

An attempt is a sample of the kernel unless it was skipped or broke for
reasons outside the kernel (repeats._is_infra: an ERROR with no failed
check). What the kernel did (a hang, a panic, no shell) is a failed check,
hence always a failed sample. Checks are counted as bisect and review count
them (repeats.scenario_sample): a boot that missed SMP bring-up and passed
on the runner's retry is a failure of "all CPUs came online at boot" in
that attempt. The scenario's verdict over its attempts: PASS when every
judged attempt passed, FAIL when every one failed, FLAKY when they are
mixed, and as a single run's (SKIP or ERROR) when none was judged."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from harness.decide.rates import clopper_pearson, rate_seen  # up: pure count statistics, no harness imports
from harness.expect.checks import ERROR, FAIL, FLAKY, PASS, SKIP, CheckResult
from harness.expect.result import ScenarioResult
from harness.outputs.lines import count_line, repeats_counts, seen_line
from harness.run.repeats import Counts, SuiteRun, scenario_sample
from harness.run.scenario_verdict import write_artifacts
from harness.scenario.types import Scenario

REPEATS_JSON = "repeats.json"
CONFIDENCE = 0.95
BRINGUP_CHECK = "all CPUs came online at boot"


def attempt_dir(art: Path, index: int) -> Path:
    """Where attempt `index` (from 1) keeps its artifacts: bisect's and
    review's layout (repeats._where)."""
    return art / f"run-{index}"


def sample_of(res: ScenarioResult, counted: SuiteRun) -> str | None:
    """PASS or FAIL, what one attempt says of the kernel; None when it says
    nothing (skipped, or infrastructure). counted: the attempt's checks as
    repeats.scenario_sample counts them."""
    if counted.unjudged:            # skipped, or infrastructure (repeats._is_infra)
        return None
    return FAIL if res.verdict in (FAIL, ERROR) or counted.failed else PASS


def verdict_over(samples: Sequence[str | None], verdicts: Sequence[str]) -> str:
    """The scenario's verdict from its attempts' samples (sample_of) and, for
    when none was judged, their own verdicts: all skipped is SKIP, any
    infrastructure failure is ERROR."""
    judged = [s for s in samples if s is not None]
    if not judged:
        return SKIP if verdicts and all(v == SKIP for v in verdicts) else ERROR
    if all(s == PASS for s in judged):
        return PASS
    if all(s == FAIL for s in judged):
        return FAIL
    return FLAKY


@dataclass
class CheckCount:
    """One check over the attempts that judged it."""
    name: str
    origin: str
    failed: int
    runs: int
    first_failed_run: int | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": self.name, "origin": self.origin, "failed": self.failed, "runs": self.runs}
        if self.runs:
            low, high = clopper_pearson(self.failed, self.runs, CONFIDENCE)
            doc.update(rate=round(self.failed / self.runs, 4), ci95=[round(low, 4), round(high, 4)])
        if self.runs and not self.failed:
            # What the runs rule out: the rate that would have shown at least once.
            doc["rate_seen_95"] = round(rate_seen(self.runs, CONFIDENCE), 4)
        if self.first_failed_run is not None:
            doc["first_failed_run"] = self.first_failed_run
        return doc


@dataclass
class RepeatedResult(ScenarioResult):
    """The result of a scenario's N attempts, shown and written as one
    scenario's: its checks merged (a check PASS in every judged attempt,
    FAIL in every one, FLAKY when mixed; the counts in its message), the
    artifacts directory the attempts' parent, and the console log, the
    observations and the failure excerpts those of the primary attempt (the
    first that failed, else the last)."""
    attempts: list[ScenarioResult] = field(default_factory=list)
    repeats: dict[str, Any] = field(default_factory=dict)

    @property
    def console_log(self) -> Path | None:
        return self.artifacts / self.repeats["primary"] / "console.log" if self.artifacts else None

    def summary(self) -> str:
        return repeats_counts(self.repeats, self.boot_retries)


def _implied(scn: Scenario, results: Sequence[ScenarioResult], counted: Sequence[SuiteRun]) -> None:
    """Add to each judged attempt's counted checks the ones it passed
    without naming: in an attempt that ran to its end (PASS, FLAKY), any
    check the others name (a step's own check is listed only when it
    fails). The harness's checks of every boot (a crash, a hang, no shell,
    bring-up, an unexpected report) are already stated where they were
    evaluated (repeats.implicit_passes), so a crash in 1 of 5 runs counts
    1/5. A check absent from an attempt that ended early (a crash before its
    step) was not judged there."""
    names = list(dict.fromkeys(n for run in counted for n in run.checks))
    for res, run in zip(results, counted):
        if not run.judged_for(scn.name):
            continue
        whole = res.verdict in (PASS, FLAKY)
        for n in names:
            if n not in run.checks and whole:
                run.checks[n] = PASS


def _order(counted: Sequence[SuiteRun], results: Sequence[ScenarioResult], prefix: str) -> list[str]:
    """Check names in the order the attempts list them (not sorted), the
    ones only a count adds (bring-up) after them; only the judged
    attempts' when there are any (an infrastructure error's own check,
    such as a model error, is no check of the kernel)."""
    judged = [r for r, run in zip(results, counted) if not run.unjudged] or results
    names = [c.name for r in judged for c in r.checks]
    names += [n.removeprefix(prefix) for run in counted for n in run.checks]
    return list(dict.fromkeys(names))


def check_counts(scn: Scenario, results: Sequence[ScenarioResult],
                 counted: Sequence[SuiteRun]) -> list[CheckCount]:
    """Per check, failures of the attempts that judged it (Counts.per_check)."""
    prefix = f"{scn.name}: "
    _implied(scn, results, counted)
    per = Counts(list(counted)).per_check()
    origins = {c.name: c.origin for r in results for c in r.checks}
    out = []
    for name in _order(counted, results, prefix):
        passed, failed = per.get(prefix + name, (0, 0))
        first = next((i for i, run in enumerate(counted, 1)
                      if run.judged_for(scn.name) and run.checks.get(prefix + name) in (FAIL, ERROR)), None)
        out.append(CheckCount(name, origins.get(name, "expectation"), failed, passed + failed, first))
    return out


def _merged_check(count: CheckCount, results: Sequence[ScenarioResult]) -> CheckResult:
    """One check over the attempts: the failing attempt's words when it
    failed, and its counts in the message."""
    own = [c for r in results for c in r.checks if c.name == count.name]
    if count.first_failed_run is not None:
        own = [c for c in results[count.first_failed_run - 1].checks if c.name == count.name] or own
    base = own[0] if own else CheckResult(
        count.name, FAIL, "every CPU online at every boot", "a boot missed SMP bring-up and was retried")
    if count.runs == 0:
        verdict = base.verdict
    elif count.failed == 0:
        verdict = PASS
    elif count.failed == count.runs:
        verdict = FAIL if any(c.verdict == FAIL for c in own) or not own else ERROR
    else:
        verdict = FLAKY
    doc = count.to_json()
    message = count_line(doc) if count.failed else (
        seen_line(count.runs, doc["rate_seen_95"]) if count.runs else "not judged in any run")
    if count.first_failed_run is not None:
        message += f"; first in run {count.first_failed_run}"
    return CheckResult(count.name, verdict, base.expected, base.observed, base.step, message, base.origin)


def _logs(res: ScenarioResult, art: Path) -> list[str]:
    """The attempt's console logs (its own and those of its retried boots),
    relative to the scenario's directory."""
    where = res.artifacts
    if where is None:
        return []
    found = [where / "console.log"] + sorted(where.glob("console-*.log"))
    return [str(p.relative_to(art)) for p in found if p.exists()]


def _attempts_doc(results: Sequence[ScenarioResult], samples: Sequence[str | None], art: Path) -> list[dict]:
    return [{"run": i, "dir": attempt_dir(art, i).name, "verdict": r.verdict,
             "sample": s or "not judged", "reason": r.reason.splitlines()[0] if r.reason else "",
             "seconds": round(r.seconds, 2), "console_logs": _logs(r, art)}
            for i, (r, s) in enumerate(zip(results, samples), 1)]


def _reason(verdict: str, results: Sequence[ScenarioResult], samples: Sequence[str | None], primary: int) -> str:
    """The primary attempt's reason, naming the run when there were others."""
    first = results[primary - 1].reason
    if not first:
        return ""
    return first if verdict in (SKIP, ERROR) and not any(samples) else f"run {primary}: {first}"


def combine(scn: Scenario, kernel: str, art: Path, results: Sequence[ScenarioResult]) -> RepeatedResult:
    """The one result of a scenario's attempts (in order, attempt i's
    artifacts in attempt_dir(art, i)); writes OUT/<kernel>/<scenario>/
    repeats.json (every attempt, every check's counts and interval) and a
    verdicts.json and expectations.json beside it."""
    counted = [scenario_sample(i, scn, r.artifacts or attempt_dir(art, i), r) for i, r in enumerate(results, 1)]
    samples = [sample_of(r, c) for r, c in zip(results, counted)]
    verdict = verdict_over(samples, [r.verdict for r in results])
    primary = next((i for i, s in enumerate(samples, 1) if s == FAIL), len(results))
    counts = check_counts(scn, results, counted)
    judged = sum(s is not None for s in samples)
    doc = {"runs": len(results), "judged": judged, "not_judged": len(results) - judged,
           "failed": sum(s == FAIL for s in samples), "verdict": verdict, "confidence": CONFIDENCE,
           "primary": attempt_dir(art, primary).name, "attempts": _attempts_doc(results, samples, art),
           "checks": [c.to_json() for c in counts]}
    out = RepeatedResult(
        scn, kernel, verdict, [_merged_check(c, results) for c in counts], sum(r.seconds for r in results),
        artifacts=art, reason=_reason(verdict, results, samples, primary),
        boot_retries=sum(r.boot_retries for r in results), model_only=results[0].model_only,
        unexpected_reports=list(dict.fromkeys(u for r in results for u in r.unexpected_reports)),
        started_at=results[0].started_at, ended_at=results[-1].ended_at,
        qemu_spans=[s for r in results for s in r.qemu_spans], infra_retries=sum(r.infra_retries for r in results),
        attempts=list(results), repeats=doc)
    art.mkdir(parents=True, exist_ok=True)       # none of the runs may have started (infrastructure)
    write_artifacts(out, None)
    (art / REPEATS_JSON).write_text(json.dumps({"scenario": scn.name, "kernel": kernel, **doc}, indent=2))
    return out
