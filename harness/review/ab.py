"""A/B: the base (A) and base + series (B) run in rounds, and every check,
kernel report title included, decided SAME / DIFFERENT / UNKNOWN by the
decision core (harness/decide/compare.py): Fisher's exact test, one-sided,
Holm over the checks and a Bonferroni split of alpha over the looks. The
first round runs every scenario once a side; later rounds run only the
scenarios with an UNKNOWN check, leaning ones first, until the answer is
known or the budget spent."""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from harness.decide import compare as core
from harness.decide import rates
from harness.decide.ab_counts import CLASSES, FIXED, LEANS_BETTER, NEW, UNDECIDED, classify
from harness.decide.compare import CheckVerdict, Design
from harness.kernel.kbuild import BuiltKernel
from harness.run.repeats import Counts, SuiteRun
from harness.scenario.types import Scenario

# A report title's class: brought by the series, gone with it, or neither shown.
NEW_TITLE = "new report"
GONE_TITLE = "report gone"
SAME_TITLE = "report unchanged"
UNDECIDED_TITLE = "report undecided"
MODEL_MARK = ": model: "
TITLE_KEY = "report\t"           # a title's name in the decision's family (no scenario has a tab)


@dataclass
class CheckDelta:
    name: str                    # "<scenario>: <check>"
    a: tuple[int, int]           # (passed, failed) on A
    b: tuple[int, int]
    cls: str
    p: float | None = None
    patch: int | None = None     # the first patch that brings it (attribution)
    attribution: str = ""        # how it was attributed, or why not
    verdict: CheckVerdict | None = None   # the decision core's, with its counts and p

    @property
    def scenario(self) -> str:
        return self.name.split(": ", 1)[0]

    @property
    def model(self) -> bool:
        return MODEL_MARK in self.name

    @property
    def significance(self) -> str:
        return self.verdict.text() if self.verdict else ""

    def counts_text(self) -> str:
        return f"A {self.a[1]}/{sum(self.a)} failed, B {self.b[1]}/{sum(self.b)} failed"

    def to_json(self) -> dict:
        return {"name": self.name, "class": self.cls, "a": {"passed": self.a[0], "failed": self.a[1]},
                "b": {"passed": self.b[0], "failed": self.b[1]}, "p": self.p, "patch": self.patch,
                "attribution": self.attribution, "model": self.model, **_decision_json(self.verdict)}


@dataclass
class TitleDelta:
    title: str
    a: int                       # failing runs of A it appeared in
    b: int
    cls: str                     # NEW_TITLE or GONE_TITLE
    scenarios: tuple[str, ...] = ()   # scenarios that failed in the runs it appeared in
    patch: int | None = None
    attribution: str = ""
    verdict: CheckVerdict | None = None

    def to_json(self) -> dict:
        return {"title": self.title, "class": self.cls, "a_runs": self.a, "b_runs": self.b,
                "scenarios": list(self.scenarios), "patch": self.patch, "attribution": self.attribution,
                **_decision_json(self.verdict)}


def _decision_json(v: CheckVerdict | None) -> dict:
    if v is None:
        return {}
    return {"decision": v.outcome, "direction": v.direction, "p": v.p, "level": v.level,
            "followup_rate": v.followup,
            "detectable_rate": v.detectable if v.detectable is None or v.detectable <= 1 else None,
            "text": v.text()}


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
    design: Design = field(default_factory=Design)
    rounds: int = 0
    # scenario -> runs a side it got (rounds repeat only the undecided ones)
    runs_per_scenario: dict[str, int] = field(default_factory=dict)

    def of(self, *classes: str) -> list[CheckDelta]:
        return [c for c in self.checks if c.cls in classes]

    @property
    def new_titles(self) -> list[TitleDelta]:
        return [t for t in self.titles if t.cls == NEW_TITLE]

    @property
    def verdicts(self) -> dict[str, CheckVerdict]:
        out = {c.name: c.verdict for c in self.checks if c.verdict}
        out.update({TITLE_KEY + t.title: t.verdict for t in self.titles if t.verdict})
        return out

    @property
    def regressed(self) -> bool:
        """DIFFERENT for the worse: a check or a kernel report title."""
        return bool(self.of(NEW) or self.new_titles)

    @property
    def undecided(self) -> bool:
        return bool(self.of(UNDECIDED) or any(t.cls == UNDECIDED_TITLE for t in self.titles))

    def to_json(self) -> dict:
        d = self.design
        return {"checks": [c.to_json() for c in self.checks], "titles": [t.to_json() for t in self.titles],
                "a_runs": self.a_runs, "b_runs": self.b_runs, "a_judged": self.a_judged,
                "b_judged": self.b_judged, "a_infra": self.a_infra, "b_infra": self.b_infra,
                "rounds": self.rounds, "runs_per_scenario": self.runs_per_scenario,
                "design": {"alpha": d.alpha, "power": d.power, "min_effect": d.min_effect, "first": d.first,
                           "step": d.step, "max_runs": d.max_runs, "looks": d.max_rounds, "level": d.level},
                "classes": {c: len(self.of(c)) for c in CLASSES}}


def _scenarios_with(counts: Counts, title: str) -> tuple[str, ...]:
    found: list[str] = []
    for r in counts.judged:
        if r.titles_by_scenario:        # which scenario's console log it was in
            found += [s for s, ts in r.titles_by_scenario.items() if title in ts and s not in found]
        elif title in r.titles:
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


def compare(a: Counts, b: Counts, design: Design = Design()) -> Comparison:
    """Every check and report title decided from the runs so far."""
    pa, pb = _counts(a), _counts(b)
    cmp = Comparison(a_runs=len(a.runs), b_runs=len(b.runs), a_judged=len(a.judged), b_judged=len(b.judged),
                     a_infra=_unjudged(a), b_infra=_unjudged(b), design=design)
    family: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {}
    pairs: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {}
    for name in sorted(set(pa) | set(pb)):
        scn = name.split(": ", 1)[0]
        ca, cb = pa.get(name, (a.judged_runs(scn), 0)), pb.get(name, (b.judged_runs(scn), 0))
        pairs[name] = (ca, cb)
        family[name] = ((ca[1], sum(ca)), (cb[1], sum(cb)))
    ta, tb = a.titles(), b.titles()
    titles = sorted(set(ta) | set(tb))
    for t in titles:
        family[TITLE_KEY + t] = ((ta[t], len(a.judged)), (tb[t], len(b.judged)))
    verdicts = core.judge(family, design)
    for name, (ca, cb) in pairs.items():
        v = verdicts[name]
        if v.outcome != core.DIFFERENT:       # what it would have caught: SAME and UNKNOWN say it
            v = dataclasses.replace(v, detectable=_detectable(v.a, v.b[1], design))
        cmp.checks.append(CheckDelta(name, ca, cb, classify(v), v.p, verdict=v))
    for t in titles:
        v = verdicts[TITLE_KEY + t]
        cls = {NEW: NEW_TITLE, FIXED: GONE_TITLE, UNDECIDED: UNDECIDED_TITLE,
               LEANS_BETTER: SAME_TITLE}.get(classify(v), SAME_TITLE)
        who = b if ta[t] <= tb[t] else a
        cmp.titles.append(TitleDelta(t, ta[t], tb[t], cls, _scenarios_with(who, t), verdict=v))
    return cmp


@functools.lru_cache(maxsize=4096)
def _detectable(a: tuple[int, int], b_runs: int, design: Design) -> float:
    """B's failure rate this comparison reports DIFFERENT with design.power
    (most checks share their counts: a few ms each, once)."""
    found = rates.detectable_rise(a, b_runs, design.level, design.power) if b_runs else None
    return math.inf if found is None else found        # inf: no rate would have been seen


def _seconds(*sides: Counts) -> dict[str, float]:
    """Scenario -> mean seconds of a run of it so far (the cheapest of equally
    leaning scenarios runs first)."""
    spent: dict[str, list[float]] = {}
    for counts in sides:
        for r in counts.runs:
            for s, t in r.durations.items():
                spent.setdefault(s, []).append(t)
    return {s: sum(ts) / len(ts) for s, ts in spent.items()}


def _title_scenarios(cmp: Comparison) -> dict[str, tuple[str, ...]]:
    return {TITLE_KEY + t.title: t.scenarios for t in cmp.titles}


# One round's runs of some scenarios on one kernel: (scenarios, kernel,
# initrd, out, indices, label) -> one SuiteRun per index.
RunRound = Callable[..., list[SuiteRun]]


def rounds(scenarios: Sequence[Scenario], a: BuiltKernel, b: BuiltKernel, initrd: Path, out: Path,
           design: Design, run_round: RunRound,
           say: Callable[[str], None] = lambda _m: None) -> tuple[Counts, Counts, Comparison]:
    """Round 1 runs every scenario design.first times on A, then on B;
    each later round runs design.step more of the scenarios next_round
    names, until the decision is made or no scenario has budget left."""
    ca, cb = Counts(), Counts()
    done = {s.name: 0 for s in scenarios}
    todo, index, rnd = list(scenarios), 0, 0
    while todo:
        rnd += 1
        n = min(design.first if rnd == 1 else design.step, design.max_runs - max(done[s.name] for s in todo))
        indices = list(range(index + 1, index + n + 1))
        index += n
        names = ", ".join(s.name for s in todo) if len(todo) <= 4 else f"{len(todo)} scenarios"
        for label, kernel, counts in (("A", a, ca), ("B", b, cb)):
            say(f"round {rnd}: {n} run{'s' * (n != 1)} of {names} on {label} "
                f"({'base' if label == 'A' else 'base + series'})…")
            for run in run_round(todo, kernel, initrd, out, indices, label):
                counts.add(run)
        for s in todo:
            done[s.name] += n
        cmp = compare(ca, cb, design)
        cmp.rounds, cmp.runs_per_scenario = rnd, dict(done)
        verdicts = cmp.verdicts
        left = sum(v.outcome == core.UNKNOWN for v in verdicts.values())
        say(f"  after round {rnd}: {len(cmp.of(NEW))} worse, {len(cmp.of(FIXED))} better, {left} undecided")
        if core.decided(verdicts):
            break
        scn_of = _title_scenarios(cmp)
        # A scenario one kernel skips every time cannot be judged by more runs.
        hopeless = {n for n in done if ca.only_skipped(n) or cb.only_skipped(n)}

        def scenarios_of(k: str, m: dict = scn_of, skip: set = hopeless) -> tuple[str, ...]:
            return tuple(x for x in (m.get(k) or (k.split(": ", 1)[0],)) if x not in skip)
        wanted = set(core.next_round(verdicts, done, scenarios_of, design, _seconds(ca, cb)))
        todo = [s for s in scenarios if s.name in wanted]
    return ca, cb, cmp
