"""A/B: the base (A) and base + series (B) run N times each, interleaved
A, B, A, B so that host noise hits both alike, and every check classified by
its counts. Kernel report titles and the reference model's disagreements
are compared the same way. Significance: Fisher's exact test (scipy)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from harness.decide.ab_counts import NEW, classify, fisher_p, significance_text
from harness.kernel.kbuild import BuiltKernel
from harness.run.repeats import Counts, SuiteRun
from harness.scenario.types import Scenario

# A new report title on B is a finding whatever check it hit.
NEW_TITLE = "new report"
GONE_TITLE = "report gone"
MODEL_MARK = ": model: "


@dataclass
class CheckDelta:
    name: str                    # "<scenario>: <check>"
    a: tuple[int, int]           # (passed, failed) on A
    b: tuple[int, int]
    cls: str
    p: float | None = None
    patch: int | None = None     # the first patch that brings it (attribution)
    attribution: str = ""        # how it was attributed, or why not

    @property
    def scenario(self) -> str:
        return self.name.split(": ", 1)[0]

    @property
    def model(self) -> bool:
        return MODEL_MARK in self.name

    @property
    def significance(self) -> str:
        return significance_text(self.a, self.b, self.cls, self.p)

    def counts_text(self) -> str:
        return f"A {self.a[1]}/{sum(self.a)} failed, B {self.b[1]}/{sum(self.b)} failed"

    def to_json(self) -> dict:
        return {"name": self.name, "class": self.cls, "a": {"passed": self.a[0], "failed": self.a[1]},
                "b": {"passed": self.b[0], "failed": self.b[1]}, "p": self.p, "patch": self.patch,
                "attribution": self.attribution, "model": self.model}


@dataclass
class TitleDelta:
    title: str
    a: int                       # failing runs of A it appeared in
    b: int
    cls: str                     # NEW_TITLE or GONE_TITLE
    scenarios: tuple[str, ...] = ()   # scenarios that failed in the runs it appeared in
    patch: int | None = None
    attribution: str = ""

    def to_json(self) -> dict:
        return {"title": self.title, "class": self.cls, "a_runs": self.a, "b_runs": self.b,
                "scenarios": list(self.scenarios), "patch": self.patch, "attribution": self.attribution}


@dataclass
class Comparison:
    checks: list[CheckDelta] = field(default_factory=list)
    titles: list[TitleDelta] = field(default_factory=list)
    a_runs: int = 0
    b_runs: int = 0
    a_judged: int = 0
    b_judged: int = 0
    a_infra: list[str] = field(default_factory=list)
    b_infra: list[str] = field(default_factory=list)

    def of(self, *classes: str) -> list[CheckDelta]:
        return [c for c in self.checks if c.cls in classes]

    @property
    def new_titles(self) -> list[TitleDelta]:
        return [t for t in self.titles if t.cls == NEW_TITLE]

    @property
    def regressed(self) -> bool:
        """Something new failed: a check or a kernel report title."""
        return bool(self.of(NEW) or self.new_titles)

    def to_json(self) -> dict:
        return {"checks": [c.to_json() for c in self.checks], "titles": [t.to_json() for t in self.titles],
                "a_runs": self.a_runs, "b_runs": self.b_runs, "a_judged": self.a_judged,
                "b_judged": self.b_judged, "a_infra": self.a_infra, "b_infra": self.b_infra}


def _scenarios_with(counts: Counts, title: str) -> tuple[str, ...]:
    found: list[str] = []
    for r in counts.judged:
        if title in r.titles:
            for name in r.failed:
                s = name.split(": ", 1)[0]
                if s not in found:
                    found.append(s)
    return tuple(sorted(found))


def _counts(c: Counts) -> dict[str, tuple[int, int]]:
    """check -> (runs it did not fail, runs it failed) over the judged runs.
    A check missing from a run that judged its scenario did not fail there
    (a skipped scenario, or one voided by infrastructure, counts for none of
    its checks, and for nothing else): some are made only
    when something goes wrong ("kernel did not crash", "no unexpected kernel
    report"), so their absence is the pass (measured: the kgdb fix removed
    both from every run, and counting only present verdicts called them
    "still failing")."""
    return {name: (c.judged_runs(name.split(": ", 1)[0]) - f, f) for name, (_p, f) in c.per_check().items()}


def _unjudged(c: Counts) -> list[str]:
    """Why runs said nothing about the kernel: infra, or a scenario skipped."""
    return [r.infra or f"a scenario was skipped: {r.skipped}" for r in c.runs if r.infra or r.skipped]


def compare(a: Counts, b: Counts) -> Comparison:
    pa, pb = _counts(a), _counts(b)
    cmp = Comparison(a_runs=len(a.runs), b_runs=len(b.runs), a_judged=len(a.judged), b_judged=len(b.judged),
                     a_infra=_unjudged(a), b_infra=_unjudged(b))
    for name in sorted(set(pa) | set(pb)):
        scn = name.split(": ", 1)[0]
        ca, cb = pa.get(name, (a.judged_runs(scn), 0)), pb.get(name, (b.judged_runs(scn), 0))
        cls = classify(ca, cb)
        cmp.checks.append(CheckDelta(name, ca, cb, cls, fisher_p(ca, cb, cls)))
    ta, tb = a.titles(), b.titles()
    for t in sorted(set(tb) - set(ta)):
        cmp.titles.append(TitleDelta(t, 0, tb[t], NEW_TITLE, _scenarios_with(b, t)))
    for t in sorted(set(ta) - set(tb)):
        cmp.titles.append(TitleDelta(t, ta[t], 0, GONE_TITLE, _scenarios_with(a, t)))
    return cmp


RunOnce = Callable[..., SuiteRun]


def interleave(scenarios: Sequence[Scenario], a: BuiltKernel, b: BuiltKernel, initrd: Path, out: Path,
               repeats: int, run_once: RunOnce, say: Callable[[str], None] = lambda _m: None,
               on_boot: Callable | None = None) -> tuple[Counts, Counts]:
    """A, B, A, B, ...: repeats runs of every scenario on each kernel."""
    ca, cb = Counts(), Counts()
    for i in range(1, repeats + 1):
        for label, kernel, counts in (("A", a, ca), ("B", b, cb)):
            say(f"run {i}/{repeats} on {label} ({'base' if label == 'A' else 'base + series'})…")
            run = run_once(scenarios, kernel, initrd, out, i, label=label, on_boot=on_boot)
            counts.add(run)
            failed = f"{len(run.failed)} checks failed" if run.failed else "all checks passed"
            say(f"  {label} run {i}: {run.infra or run.skipped or failed} ({run.seconds:.0f} s)")
    return ca, cb
