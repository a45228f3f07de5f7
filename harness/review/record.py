"""What a review found, as the output writers read it (review.md, the mail
reply, JUnit, patchwork checks, review.json)."""
from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.decide.ab_counts import CLASSES, FIXED, NEW, UNDECIDED
from harness.decide.compare import Design
from harness.review.ab import Comparison
from harness.review.series import Series

IDENTITY = "rvharness <rvharness@localhost>"


@dataclass(frozen=True)
class ReviewParams:
    series: str
    scenarios: tuple[str, ...]
    kernel: str | None = None
    tree: str | None = None
    base: str | None = None
    repeats: int = Design.max_runs   # the budget: runs a side per scenario at most
    alpha: float = Design.alpha
    version: int | None = None
    email: bool = False
    jobs: int = 1                # VMs at once within each run (-j; harness/parallel)

    def command(self, out: Path) -> str:
        argv = ["rvharness", "review", self.series]
        if self.kernel:
            argv += ["--kernel", self.kernel]
        if self.tree:
            argv += ["--tree", self.tree]
        if self.base:
            argv += ["--base", self.base]
        if self.version is not None:
            argv += ["--version", str(self.version)]
        argv += ["--repeats", str(self.repeats), "--alpha", f"{self.alpha:g}"]
        if self.jobs > 1:
            argv += ["-j", str(self.jobs)]
        argv += [*self.scenarios, "--out", str(out)]
        if self.email:
            argv.append("--email")
        return shlex.join(argv)


@dataclass
class Stats:
    builds: dict[str, str] = field(default_factory=dict)     # "base"/"tip"/"1..k" -> built/cached/failed
    build_seconds: float = 0.0
    boots: int = 0                                            # scenario runs (one VM each)
    boot_seconds: float = 0.0
    wall_seconds: float = 0.0
    prefixes_asked: list[int] = field(default_factory=list)   # attribution's prefixes, in order


@dataclass
class Review:
    params: ReviewParams
    series: Series
    out: Path
    base_text: str
    arch: str
    compiler: str
    config_a: str
    config_b: str
    scenarios: list[str]
    cmp: Comparison
    stats: Stats = field(default_factory=Stats)
    build_break: tuple[int, str] | None = None    # (first patch that does not build, why)

    @property
    def n(self) -> int:
        return len(self.series.patches)

    @property
    def regressed(self) -> bool:
        return self.build_break is not None or self.cmp.regressed

    @property
    def exit_code(self) -> int:
        """0 SAME or better, 1 DIFFERENT for the worse (or the build breaks),
        3 UNKNOWN left within the budget."""
        if self.regressed:
            return 1
        return 3 if self.cmp.undecided else 0

    @property
    def verdict(self) -> str:
        return {0: "no change for the worse", 1: "DIFFERENT (worse)", 3: "UNKNOWN within the budget"}[self.exit_code]

    def patch_label(self, k: int | None) -> str:
        if k is None or not 1 <= k <= self.n:
            return "no single patch (undecided)"
        return self.series.patches[k - 1].label

    def counts(self, model: bool | None = None) -> dict[str, int]:
        """Checks per class; model: only model claims (True), only the
        scenarios' own checks (False), both (None)."""
        out = {c: 0 for c in CLASSES}
        for c in self.cmp.checks:
            if model is None or c.model == model:
                out[c.cls] += 1
        return out

    def headline(self) -> str:
        if self.build_break is not None:
            return f"the series does not build from patch {self.patch_label(self.build_break[0])}"

        def part(model: bool) -> str:
            c = self.counts(model)
            return (f"{c[NEW]} worse, {c[FIXED]} better, {c[UNDECIDED]} undecided of "
                    f"{sum(c.values())} {'model claims' if model else 'scenario checks'}")
        parts = [part(False), part(True)]
        new_t = len(self.cmp.new_titles)
        if new_t:
            parts.append(f"{new_t} new kernel report{'s' * (new_t != 1)}")
        return "; ".join(parts)

    def to_json(self) -> dict:
        s = self.series
        return {"params": asdict(self.params), "out": str(self.out), "base": self.base_text, "arch": self.arch,
                "compiler": self.compiler, "config_a": self.config_a, "config_b": self.config_b,
                "scenarios": self.scenarios, "regressed": self.regressed, "exit_code": self.exit_code,
                "verdict": self.verdict,
                "build_break": list(self.build_break) if self.build_break else None,
                "series": {"subject": s.subject, "version": s.version, "author": s.author,
                           "cover_msgid": s.cover_msgid, "base_commit": s.base_commit, "note": s.note,
                           "patches": [{"number": p.number, "subject": p.subject, "msgid": p.msgid,
                                        "trailers": [t.line() for t in p.trailers]} for p in s.patches],
                           "cover_trailers": [t.line() for t in s.cover_trailers]},
                "comparison": self.cmp.to_json(), "stats": asdict(self.stats)}
