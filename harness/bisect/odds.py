"""P(culprit): the posterior over the candidate commits (harness/decide/
posterior.py) fed from every run the bisect made, and the extra runs that
raise it to the target.

The search (search.py) walks the history as git bisect does, each commit
judged by its own runs. That alone does not say how likely the named commit
is to be right: a good verdict after k clean runs can still be a bad commit
that happened to pass, and a false failure on a good commit moves the
search. So after the search every run of every commit (the endpoints', the
verification's) goes into one posterior, and while no commit holds the
target the commit whose next run is expected to tell most (expected
information gain) runs once more, within a budget. The culprit is the
posterior's best commit; P(culprit) is printed in bisect.md, JUnit and the
exit line. bench/decide measures its calibration and cost against
syzkaller's rule and plain git bisect."""
from __future__ import annotations

import time
from typing import Sequence

from harness.bisect.endpoints import BisectAbort
from harness.bisect.search import steps_left
from harness.bisect.steplog import Tested
from harness.decide import posterior
from harness.decide.bisect_step import CLEAN, SIGNATURE, classify
from harness.kernel.gitbuild import BUILT

MORE_RUNS = "posterior"          # the role of a run the posterior asked for
# Runs on one commit that said nothing about the signature (unrelated
# failures, infrastructure, a skip) before the posterior stops asking it.
SILENT_RUNS = 2


class CulpritOdds:
    """The Bisector's posterior (needs self.tree, self.good, self.bad,
    self.p, self.builds, self.runs, self.signature and the step helpers)."""

    def _line(self) -> list[str]:
        """The commits in the posterior's order: the good endpoint first, then
        the range oldest first (git rev-list --topo-order; a history with
        merges is taken in that linear order). With --reverse the order is
        turned round, newest first, so that "first bad" is the newest commit
        still broken and the fix is the one before it in this order."""
        line = [self.good] + self.tree.range(self.bad, [self.good])
        return line[::-1] if self.p.reverse else line

    def _culprit_at(self, line: Sequence[str], j: int) -> str:
        return line[j - 1] if self.p.reverse else line[j]

    def _image(self, sha: str) -> str | None:
        rec = self.builds.get(sha)
        return rec.get("image_sha256") if rec and rec["status"] == BUILT else None

    def _evidence(self, line: Sequence[str]) -> tuple[list[tuple[int, int]], list[int]]:
        """(signature failures, judged runs) per commit of the line, and the
        hypotheses that are impossible. An Image's runs count once, at the
        first commit that has it. One Image cannot be both good and bad, so a
        hypothesis that puts commits with the same Image on both sides (a
        documentation-only commit as the culprit, say) is impossible."""
        counts: list[tuple[int, int]] = []
        span: dict[str, tuple[int, int]] = {}
        for j, sha in enumerate(line):
            img = self._image(sha)
            if img is None or img in span:
                counts.append((0, 0))
                if img is not None:
                    span[img] = (span[img][0], j)
                continue
            span[img] = (j, j)
            cls = [classify(r, self.signature)[0] for r in self.runs.get(img, [])]
            counts.append((cls.count(SIGNATURE), cls.count(SIGNATURE) + cls.count(CLEAN)))
        excluded = sorted({j for first, last in span.values() for j in range(first + 1, last + 1)})
        return counts, excluded

    def _search_state(self) -> tuple[list[str], posterior.Search]:
        line = self._line()
        counts, excluded = self._evidence(line)
        s = posterior.Search(len(line), target=self.p.confidence, first=1, counts=counts, excluded=excluded)
        return line, s

    def _askable(self, line: Sequence[str]) -> list[int]:
        """Commits the posterior may ask for one more run: they build (or are
        not built yet) and have not kept saying nothing about the signature."""
        out = []
        for j, sha in enumerate(line):
            rec = self.builds.get(sha)
            if rec is not None and rec["status"] != BUILT:
                continue
            img = self._image(sha)
            cls = [classify(r, self.signature)[0] for r in (self.runs.get(img, []) if img else [])]
            if len(cls) - cls.count(SIGNATURE) - cls.count(CLEAN) >= SILENT_RUNS:
                continue
            out.append(j)
        return out

    def odds_budget(self) -> int:
        """Runs the posterior may ask for: 2 x --max-repeats for each step a
        binary search of this range takes, plus two (bench/decide: at p_bad
        0.3 the posterior alone needs 60-70 runs on average over 16 commits,
        and this is 120)."""
        return 2 * self.p.max_repeats * (steps_left(len(self.tree.range(self.bad, [self.good]))) + 2)

    def _more_runs(self) -> None:
        """Run the most telling commit once more until one commit holds the
        target or the budget is spent. A resumed bisect recalls its earlier
        extra runs (their runs are in the step log) and goes on from there."""
        for rec in self.log.of("step"):
            if rec.get("role") == MORE_RUNS:
                t = Tested(**{k: v for k, v in rec.items() if k in Tested.__dataclass_fields__})
                if t not in self.tested:
                    self.tested.append(t)
        budget = self.odds_budget()
        spent = sum(t.role == MORE_RUNS for t in self.tested)
        while spent < budget:
            line, s = self._search_state()
            best, p = s.best()
            if p >= s.target:
                return
            pool = self._askable(line)
            if not pool:
                return
            j, gain = s.next_and_gain(pool)
            if gain < posterior.MIN_GAIN:
                self.say(f"no run left that would move P(culprit) ({gain:.4f} nats expected at best)")
                return
            self._one_more_run(line[j], best, p, line)
            spent += 1
            infra = sum(t.infra for t in self.tested if t.role == MORE_RUNS)
            if infra >= 3 and 3 * infra > spent:
                raise BisectAbort(f"infrastructure failed in {infra} of {spent} runs the posterior asked for "
                                  "(more than a third)")

    def _one_more_run(self, sha: str, best: int, p: float, line: Sequence[str]) -> None:
        t0 = time.monotonic()
        info = self.tree.describe(sha)
        n = len(self.tested) + 1
        lead = self._culprit_at(line, best)[:12]
        self.say(f"step {n}: {sha[:12]} '{info['subject'][:60]}' — one more run (P({lead}) = {p:.3f}, "
                 f"target {self.p.confidence:g})")
        rec, kernel = self._build(sha)
        t = Tested(n, sha, sha[:12], info["subject"], MORE_RUNS, "", "", image=rec.get("image_sha256", ""),
                   key=rec.get("key", ""), build=rec["status"], build_seconds=rec.get("seconds", 0.0),
                   build_cached=rec.get("cached", False))
        if kernel is None:
            t.verdict, t.reason = "skip", rec.get("reason") or rec["status"]
            self._finish(t, t0)
            return
        run = self._run(kernel, t.image, t.short)
        cls, why = classify(run, self.signature)
        t.verdict = cls
        t.clean, t.signature = int(cls == CLEAN), int(cls == SIGNATURE)
        t.unrelated, t.infra = int(cls not in (CLEAN, SIGNATURE) and not run.infra), int(bool(run.infra))
        t.boots = self.unattributed.pop(t.image, 0)
        _, s = self._search_state()
        b2, p2 = s.best()
        # The signature's checks are listed once, in bisect.md's Signature; other
        # failures are named, since they are why this run did not count.
        said = cls if cls in (CLEAN, SIGNATURE) else f"{cls}: {why}"
        t.reason = f"{said}; P({self._culprit_at(line, b2)[:12]}) = {p2:.3f}"
        self._finish(t, t0)

    def odds(self) -> dict:
        """The posterior's answer: the most likely culprit, P(culprit), and
        every commit's counts and probability (for bisect.md and JSON)."""
        line, s = self._search_state()
        post = s.posterior()
        best, p = s.best()
        rows = []
        for j, sha in enumerate(line):
            f, r = s.counts[j]
            rows.append({"commit": sha, "short": sha[:12], "failed": f, "runs": r,
                         "p_culprit": round(post[j + 1] if self.p.reverse and j + 1 < len(line) else
                                            (0.0 if self.p.reverse else post[j]), 4)})
        # The fewest commits that together hold the target, in the line's order.
        ranked = sorted(range(len(rows)), key=lambda j: -rows[j]["p_culprit"])
        credible: list[int] = []
        for j in ranked:
            if sum(rows[i]["p_culprit"] for i in credible) >= self.p.confidence or rows[j]["p_culprit"] <= 0:
                break
            credible.append(j)
        order = sorted(credible, reverse=self.p.reverse)
        return {"p_culprit": round(p, 4), "culprit": self._culprit_at(line, best), "target": self.p.confidence,
                "credible": [line[j] for j in order],
                "commits": rows, "budget": self.odds_budget(),
                "extra_runs": sum(t.role == MORE_RUNS for t in self.tested),
                "priors": {"good_zero": s.priors.good_zero, "good_beta": list(s.priors.good),
                           "bad_one": s.priors.bad_one, "bad_beta": list(s.priors.bad)}}
