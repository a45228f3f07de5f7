"""Running a set of scenarios N times on one kernel and counting, check by
check: the part bisect and patch review share.

One *run* is every scenario once, each through `runner.run_scenario` with
its artifacts under OUT/<label>/<scenario>/run-<i>/. A run is summarised as
a `Run`: which checks failed (named "<scenario>: <check>", model claims
included as their "model: ..." checks), the titles of the kernel reports in
its console logs (harness/parsers/reports.py), and whether it broke for
reasons outside the kernel (infra). `Counts` accumulates runs: per-check
pass/fail counts, report titles and failure signatures. Review (A/B) keeps
one `Counts` per kernel and calls `run_once` alternately.

The pure functions that judge a commit from its runs are in
harness/decide/bisect_step.py."""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from harness.core.errors import HarnessError
from harness.core.names import safe
from harness.expect.checks import ERROR, FAIL, FLAKY, PASS, SKIP
from harness.expect.result import ScenarioResult
from harness.kernel.kbuild import BuiltKernel
from harness.parsers import reports
from harness.run.parallel import cluster, tasks
from harness.run.runner import run_scenario
from harness.scenario.parse import IMPLICIT_CHECKS
from harness.scenario.types import Scenario

# Report types that are the kernel's reaction to a problem. LKDTM's own
# "Performing direct entry" lines say what a scenario asked for, not what broke.
NOT_A_FINDING = {reports.LKDTM}



@dataclass
class SuiteRun:
    """One pass over every scenario on one kernel."""
    index: int
    checks: dict[str, str] = field(default_factory=dict)   # "scenario: check" -> pass/fail/error/skip
    titles: list[str] = field(default_factory=list)        # kernel report titles seen
    infra: str = ""                                         # why the run says nothing about the kernel
    skipped: str = ""                                       # a scenario could not run on this kernel
    seconds: float = 0.0
    artifacts: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)        # scenario verdict reasons, for the report
    # Scenarios whose QEMU died of someone else's signal and that the runner
    # booted again (runner.RUN_ATTEMPTS): infrastructure failures already
    # retried, so this run still says something about the kernel.
    infra_retries: int = 0
    # Scenario -> why it said nothing in this run (skipped on this kernel,
    # or infrastructure). infra and skipped above keep the first reason for
    # bisect, which judges whole runs; review counts each scenario apart, so
    # one scenario that always skips (qmp-nmi on riscv64) does not void the
    # others' checks.
    unjudged: dict[str, str] = field(default_factory=dict)
    # The scenarios this run ran: review's later rounds run only some.
    ran: list[str] = field(default_factory=list)
    # Scenario -> its seconds in this run (boot included): what a round costs.
    durations: dict[str, float] = field(default_factory=dict)
    # Scenario -> the report titles of its console log (failing scenarios only).
    titles_by_scenario: dict[str, list[str]] = field(default_factory=dict)

    def judged_for(self, scenario: str) -> bool:
        """Whether this run's checks of scenario say something about the
        kernel. A run made without per-scenario records (ran and unjudged
        empty) is judged whole, as before."""
        if self.ran and scenario not in self.ran:
            return False
        if self.unjudged or self.ran:
            return scenario not in self.unjudged
        return not self.infra and not self.skipped

    @property
    def judged_any(self) -> bool:
        return any(self.judged_for(n.split(": ", 1)[0]) for n in self.checks) if self.unjudged or self.ran else \
            not self.infra and not self.skipped

    @property
    def failed(self) -> list[str]:
        return sorted(n for n, v in self.checks.items() if v in (FAIL, ERROR))

    @property
    def passed(self) -> bool:
        return not self.infra and not self.skipped and not self.failed

    def to_json(self) -> dict:
        return {"index": self.index, "failed": self.failed, "titles": self.titles, "infra": self.infra,
                "skipped": self.skipped, "seconds": round(self.seconds, 1), "artifacts": self.artifacts,
                "checks": self.checks, "reasons": self.reasons, "infra_retries": self.infra_retries,
                "unjudged": self.unjudged, "ran": self.ran, "durations": self.durations,
                "titles_by_scenario": self.titles_by_scenario}

    @classmethod
    def from_json(cls, d: dict) -> "SuiteRun":
        return cls(d["index"], dict(d["checks"]), list(d["titles"]), d["infra"], d["skipped"],
                   d["seconds"], list(d["artifacts"]), list(d.get("reasons", [])), d.get("infra_retries", 0),
                   dict(d.get("unjudged", {})), list(d.get("ran", [])), dict(d.get("durations", {})),
                   {k: list(v) for k, v in d.get("titles_by_scenario", {}).items()})


def _titles(console_log: Path | None) -> list[str]:
    if console_log is None or not console_log.exists():
        return []
    found = reports.parse(console_log.read_text(errors="replace"))
    return reports.titles([r for r in found if r.type not in NOT_A_FINDING])


def _is_infra(verdict: str, checks: Sequence) -> bool:
    """ERROR with no failed check: QEMU died or would not start, QMP was
    lost, the harness failed. A kernel that crashes or hangs FAILs."""
    return verdict == ERROR and not any(c.verdict == FAIL for c in checks)


def run_once(scenarios: Sequence[Scenario], kernel: BuiltKernel, initrd: Path, out: Path,
             index: int, label: str | None = None,
             on_boot: Callable | None = None, jobs: int | None = None) -> SuiteRun:
    """Every scenario once on kernel; artifacts under out/<label>/<scenario>/run-<index>/.
    jobs > 1: the scenarios run side by side (run_many)."""
    if jobs and jobs > 1 and on_boot is None:
        return run_many(scenarios, kernel, initrd, out, [index], label, jobs)[0]

    run = SuiteRun(index)
    t0 = time.monotonic()
    for scn in scenarios:
        where = _where(out, label, kernel, scn, index)
        try:
            res = run_scenario(scn, kernel, initrd, where, on_boot=on_boot)
        except HarnessError as exc:
            res = exc
        _account(run, scn, where, res)
    run.seconds = time.monotonic() - t0
    return run


def run_many(scenarios: Sequence[Scenario], kernel: BuiltKernel, initrd: Path, out: Path,
             indices: Sequence[int], label: str | None = None, jobs: int = 2) -> list[SuiteRun]:
    """Runs `indices` of every scenario, `jobs` VMs at once in an
    in-process Dask LocalCluster (harness/parallel); the same Runs, in
    the same order, as run_once for each index in turn. Bisect's and
    review's repeats use it with -j."""
    from distributed import wait  # heavy: dask only with -j


    runs = {i: SuiteRun(i) for i in indices}
    t0 = time.monotonic()
    with cluster.client(cluster.ClusterTarget(jobs)) as c:
        blob = c.scatter(tasks.blob_of(kernel), broadcast=True)
        futs = {}
        for i in indices:
            for n, scn in enumerate(scenarios):
                where = _where(out, label, kernel, scn, i)
                futs[(i, n)] = c.submit(tasks.boot, blob, tasks.Identity.of(kernel), scn, str(where), False, False,
                                        f"{scn.name} [{label or kernel.recipe_name}] run {i}",
                                        resources={"VM": jobs if scn.machine.exclusive else 1}, retries=1,
                                        priority=-len(futs), pure=False)
        wait(list(futs.values()))
        for (i, n), f in futs.items():
            scn = scenarios[n]
            res = f.result().result if f.status == "finished" else HarnessError(f"infrastructure: {f.exception()}")
            _account(runs[i], scn, _where(out, label, kernel, scn, i), res)
    for r in runs.values():
        r.seconds = (time.monotonic() - t0) / len(runs)
    return [runs[i] for i in indices]


def _where(out: Path, label: str | None, kernel: BuiltKernel, scn: Scenario, index: int) -> Path:
    return out / safe(label or kernel.recipe_name) / safe(scn.name) / f"run-{index}"


# The checks the runner states only when they fail (the guest crashed, hung,
# never reached its shell, missed bring-up, printed a report nobody
# expected). Review and bisect count them in every run that judged their
# scenario, passed or failed, so that both kernels of an A/B and every bisect
# step have counts for them (issue 24): a crash brought by patch 2 of 3 is
# then placed, where before it had no count on the prefixes that passed.
IMPLICIT = (*IMPLICIT_CHECKS, "no unexpected kernel report")
ENDINGS = ("kernel did not crash", "guest responded", "kernel boots to a shell")


def implicit_passes(res: ScenarioResult) -> list[str]:
    """The implicit checks res passed without stating them: those that were
    evaluated (the run got far enough to see them) and did not fail."""
    stated = {c.name for c in res.checks}
    ended = [c for c in res.checks if c.name in ENDINGS and c.verdict == FAIL]
    before_shell = any(c.step is None for c in ended)      # crashed or stopped while booting
    out = []
    for name in IMPLICIT:
        if name in stated:
            continue
        if name in ("kernel boots to a shell", "all CPUs came online at boot") and before_shell:
            continue
        if name == "guest responded" and ended:
            continue
        if name == "no unexpected kernel report" and (res.verdict not in (PASS, FAIL, FLAKY) or res.model_only):
            continue
        out.append(name)
    return out


def scenario_sample(index: int, scn: Scenario, where: Path, res) -> SuiteRun:
    """One scenario's result (or the harness error it raised) as a run of
    that scenario alone, counted as bisect and review count it: the checks
    it samples, nothing when it was skipped or broke for reasons outside
    the kernel (`run --repeats` counts its attempts with it)."""
    run = SuiteRun(index)
    _account(run, scn, where, res)
    run.seconds = float(getattr(res, "seconds", 0.0) or 0.0)
    return run


def _account(run: SuiteRun, scn: Scenario, where: Path, res) -> None:
    """Add one scenario's result (or the harness error it raised) to run."""
    run.artifacts.append(str(where))
    run.ran.append(scn.name)
    run.durations[scn.name] = round(float(getattr(res, "seconds", 0.0) or 0.0), 2)
    run.infra_retries += getattr(res, "infra_retries", 0)
    if isinstance(res, HarnessError):
        run.infra = run.infra or f"{scn.name}: {res}".splitlines()[0]
        run.unjudged[scn.name] = f"infrastructure: {res}".splitlines()[0]
        return
    if res.reason:
        run.reasons.append(f"{scn.name}: {res.reason.splitlines()[0]}")
    if res.verdict == SKIP:
        run.skipped = run.skipped or f"{scn.name}: {res.reason}"
        run.unjudged[scn.name] = f"skipped: {res.reason}"
        return
    if _is_infra(res.verdict, res.checks):
        run.infra = run.infra or f"{scn.name}: {res.reason.splitlines()[0] if res.reason else 'error'}"
        run.unjudged[scn.name] = f"infrastructure: {res.reason.splitlines()[0] if res.reason else 'error'}"
        return
    for c in res.checks:
        run.checks[f"{scn.name}: {c.name}"] = c.verdict
    for name in implicit_passes(res):
        run.checks.setdefault(f"{scn.name}: {name}", PASS)
    if getattr(res, "bringup_retries", 0):
        # Every attempt is a sample: a boot that missed bring-up and passed
        # on the retry counts as a failure of the bring-up check in this run
        # (the decision core weighs it), never as a clean run.
        run.checks[f"{scn.name}: all CPUs came online at boot"] = FAIL
    if res.verdict in (FAIL, ERROR):
        found = _titles(res.console_log)
        run.titles_by_scenario[scn.name] = found
        run.titles.extend(t for t in found if t not in run.titles)


@dataclass
class Counts:
    """Runs of one kernel, counted check by check."""
    runs: list[SuiteRun] = field(default_factory=list)

    def add(self, run: SuiteRun) -> None:
        self.runs.append(run)

    @property
    def judged(self) -> list[SuiteRun]:
        """Runs that say something about the kernel in at least one scenario."""
        return [r for r in self.runs if r.judged_any]

    def only_skipped(self, scenario: str) -> bool:
        """Every run of scenario so far was skipped on this kernel (qmp-nmi on
        riscv64: QEMU refuses inject-nmi): more runs will not judge it."""
        mine = [r for r in self.runs if scenario in r.ran]
        return bool(mine) and all(r.unjudged.get(scenario, "").startswith("skipped") for r in mine)

    def judged_runs(self, scenario: str) -> int:
        """How many runs judged this scenario (it ran, was not skipped, and
        no infrastructure failure voided it)."""
        return sum(r.judged_for(scenario) for r in self.runs)

    def per_check(self) -> dict[str, tuple[int, int]]:
        """check name -> (passed, failed) over the runs that judged its scenario."""
        out: dict[str, list[int]] = {}
        for r in self.runs:
            for name, v in r.checks.items():
                if not r.judged_for(name.split(": ", 1)[0]):
                    continue
                pf = out.setdefault(name, [0, 0])
                pf[0 if v == PASS else 1] += v in (PASS, FAIL, ERROR)
        return {k: (v[0], v[1]) for k, v in sorted(out.items())}

    def titles(self) -> Counter:
        """Report title -> number of failing runs it appeared in."""
        return Counter(t for r in self.judged for t in r.titles)


    def to_json(self) -> dict:
        return {"runs": len(self.runs), "judged": len(self.judged),
                "passed": sum(r.passed for r in self.runs),
                "per_check": {k: {"passed": p, "failed": f} for k, (p, f) in self.per_check().items()},
                "titles": dict(self.titles())}
