"""What a review found, as the output writers read it (review.md, the mail
reply, JUnit, patchwork checks, review.json)."""
from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.decide.ab_counts import FIXED, FLAKY, NEW, STILL, UNCHANGED
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
    repeats: int = 3
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
        argv += ["--repeats", str(self.repeats)]
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

    def patch_label(self, k: int | None) -> str:
        if k is None or not 1 <= k <= self.n:
            return "no single patch (ambiguous)"
        return self.series.patches[k - 1].label

    def counts(self) -> dict[str, int]:
        out = {c: 0 for c in (NEW, FIXED, STILL, FLAKY, UNCHANGED)}
        for c in self.cmp.checks:
            out[c.cls] += 1
        return out

    def headline(self) -> str:
        if self.build_break is not None:
            return f"the series does not build from patch {self.patch_label(self.build_break[0])}"
        c = self.counts()
        new_t = len(self.cmp.new_titles)
        parts = [f"{c[NEW]} new failure{'s' * (c[NEW] != 1)}", f"{c[FIXED]} fixed"]
        if new_t:
            parts.append(f"{new_t} new kernel report{'s' * (new_t != 1)}")
        return ", ".join(parts)

    def to_json(self) -> dict:
        s = self.series
        return {"params": asdict(self.params), "out": str(self.out), "base": self.base_text, "arch": self.arch,
                "compiler": self.compiler, "config_a": self.config_a, "config_b": self.config_b,
                "scenarios": self.scenarios, "regressed": self.regressed,
                "build_break": list(self.build_break) if self.build_break else None,
                "series": {"subject": s.subject, "version": s.version, "author": s.author,
                           "cover_msgid": s.cover_msgid, "base_commit": s.base_commit, "note": s.note,
                           "patches": [{"number": p.number, "subject": p.subject, "msgid": p.msgid,
                                        "trailers": [t.line() for t in p.trailers]} for p in s.patches],
                           "cover_trailers": [t.line() for t in s.cover_trailers]},
                "comparison": self.cmp.to_json(), "stats": asdict(self.stats)}
