"""rvharness bisect: the first bad commit between a good and a bad one, with
skips, infrastructure errors, repeats to a stated confidence and a verified
culprit. docs/bisect.md describes the method and its measurements.

The search itself (search.py) is pure: it takes a history (git's, or a fake
one in the unit tests) and a judge that gives each commit its verdict. The
`Bisector` is the real judge: it builds each commit (harness/kernel/gitbuild.py),
runs the scenarios as often as the confidence needs (harness/run/repeats.py),
logs every build, run and verdict to OUT/steps.jsonl as it happens, and
answers from that log when a killed bisect is resumed. Its parts: the endpoint
checks (endpoints.py), one step (judging.py), the culprit's verification
(verify.py) and the step log (steplog.py)."""
from __future__ import annotations

import json
import os
import shlex
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from harness.bisect.endpoints import BisectAbort, EndpointChecks
from harness.bisect.judging import StepJudging
from harness.bisect.odds import CulpritOdds
from harness.bisect.search import search
from harness.bisect.steplog import Resume, StepLog, Tested
from harness.bisect.verify import CulpritVerification
from harness.core.errors import InputError
from harness.core.paths import REPO_ROOT
from harness.decide.bisect_step import BAD, GOOD, INFRA_V
from harness.kernel.gitbuild import GitTree, TreeBuilder, check_recipe_source
from harness.kernel.recipe import load_recipe
from harness.outputs import bisect_report
from harness.run import repeats
from harness.run.repeats import SuiteRun
from harness.scenario import parse as scenario

DEFAULT_RECIPE = REPO_ROOT / "kernels" / "default.yaml"
EXIT_FOUND, EXIT_INCONCLUSIVE, EXIT_ERROR = 0, 1, 2


# ------------------------------------------------------------------ records

@dataclass
class BisectParams:
    tree: str
    good: str
    bad: str
    scenarios: list[str]
    recipe: str | None = None
    checks: list[str] = field(default_factory=list)
    confidence: float = 0.95
    max_repeats: int = 10
    reverse: bool = False
    jobs: int = 1              # runs of one commit side by side (-j; harness/parallel)

    def command(self) -> str:
        argv = ["rvharness", "bisect", "--tree", self.tree, "--good", self.good, "--bad", self.bad]
        if self.recipe:
            argv += ["--kernel", self.recipe]
        argv += ["--confidence", f"{self.confidence:g}", "--max-repeats", str(self.max_repeats)]
        if self.reverse:
            argv.append("--reverse")
        argv += self.scenarios
        if self.checks:
            argv += ["--checks", *self.checks]
        return shlex.join(argv)


# ------------------------------------------------------------------ the bisector

class Bisector(EndpointChecks, StepJudging, CulpritOdds, CulpritVerification, Resume):
    """The real judge of search(): endpoint checks, the search, then the
    culprit's verification, with the step log behind each."""

    def __init__(self, params: BisectParams, out: Path, resume: bool = False, say=None,
                 on_boot: Callable | None = None, builder: TreeBuilder | None = None,
                 run_once: Callable[..., SuiteRun] | None = None) -> None:
        """builder and run_once replace the real build and run (the unit
        tests' injected predicate); by default they build with gitbuild and
        boot QEMU through repeats.run_once."""
        self.p = params
        self.out = out
        self.say = say or (lambda m: print(m, flush=True))
        self.on_boot = on_boot
        self.tree = GitTree(Path(params.tree))
        self.good = self.tree.rev(params.good, "--good")
        self.bad = self.tree.rev(params.bad, "--bad")
        if self.good == self.bad:
            raise InputError(self.tree.path, f"--good and --bad are the same commit {self.good[:12]}")
        if not self.tree.is_ancestor(self.good, self.bad):
            raise InputError(self.tree.path, f"--good {params.good} is not an ancestor of --bad {params.bad}")
        recipe_path = Path(params.recipe) if params.recipe else DEFAULT_RECIPE
        self.recipe = load_recipe(recipe_path)
        check_recipe_source(self.recipe, self.tree, explicit=params.recipe is not None)
        if not 0.5 <= params.confidence < 1:
            raise InputError(None, f"--confidence {params.confidence}: expected a number in [0.5, 1)")
        if params.max_repeats < 1:
            raise InputError(None, f"--max-repeats {params.max_repeats}: expected at least 1")
        files = scenario.discover([Path(s) for s in params.scenarios])
        self.scenarios = [scenario.load(f) for f in files]
        out.mkdir(parents=True, exist_ok=True)
        self.log = StepLog(out / "steps.jsonl")
        if not resume:
            if self.log.records:
                raise InputError(out, "already holds a bisect (steps.jsonl); use --resume to continue it")
            (out / "params.json").write_text(json.dumps(asdict(params), indent=2))
        self.builder = builder or TreeBuilder(self.tree, self.recipe, progress=self.say)
        self.run_once = run_once or repeats.run_once
        self.initrd: Path | None = None if run_once is None else Path(os.devnull)
        # What the step log already knows (for --resume) and what this process learns.
        self._recall()
        self.tested: list[Tested] = []
        self.image_owner: dict[str, str] = {}    # Image digest -> short id of the first commit with it
        self.p_fail = 1.0
        self.need = 1
        self.deterministic = False
        self.boots = 0
        # Image digest -> runs this process booted that no step has counted yet:
        # the endpoint checks boot before their step exists, and the step owns them.
        self.unattributed: dict[str, int] = {}
        self.builds_done = 0
        self.build_seconds = 0.0
        self.build_wait = 0.0
        self.boot_seconds = 0.0
        self.candidates_left = 0
        self.t0 = time.monotonic()
        # A resumed bisect's stats add the sessions before the kill: each session
        # opens with a record, and its wall time is the span of its records.
        self.log.append({"type": "session", "pid": os.getpid(), "resume": resume})

    # ---------------------------------------------------------- the whole bisect

    def run(self) -> dict:
        """Endpoints, search, verification; returns the result document."""
        result: dict = {"status": "error", "message": ""}
        try:
            self._endpoints()
            result = self._search_and_verify()
        except BisectAbort as exc:
            result = {"status": "error", "message": str(exc)}
        except KeyboardInterrupt:
            raise
        finally:
            result.update(self._summary())      # the final counts, verification included
            self.write(result)
        return result

    def _judge(self, sha: str) -> str:
        return self.test(sha, "bisect", self.need).verdict

    def _search_and_verify(self) -> dict:
        old, new = self.good, self.bad
        self.candidates_left = len(self.tree.range(new, [old]))
        new_is = GOOD if self.p.reverse else BAD

        def judge(sha: str) -> str:
            v = self._judge(sha)
            cands = [c for c in self.tree.range(self._cur_new(v, sha), self._olds())]
            self.candidates_left = len(cands)
            return v

        self._olds_list, self._new = [old], new
        searched: list[str] | None = None
        if self.deterministic:
            # git bisect's one-failure-is-bad rule is sound only when the
            # failing endpoint failed every run; then it is the cheapest
            # search, and the posterior below checks it.
            res = search(self.tree, old, new, judge, lambda v: v == new_is,
                         steps_done=lambda: len(self.tested),
                         infra_count=lambda: sum(t.verdict == INFRA_V for t in self.tested))
            if res.aborted:
                raise BisectAbort(res.aborted)
            searched = res.candidates
        # Every run so far into one posterior; more runs where they tell
        # most. For a failure that does not show every run, this is the search.
        self._more_runs()
        odds = self.odds()
        cands = searched if searched is not None else odds["credible"]
        out: dict = {"candidates": [self._describe(c) for c in cands], "odds": odds}
        target = self.p.confidence
        what = "fixed" if self.p.reverse else "first bad"
        if odds["p_culprit"] < target:
            out.update(status="inconclusive", p_culprit=odds["p_culprit"],
                       message=f"no commit reached P(culprit) >= {target:g}: the most likely "
                               f"{what} commit is "
                               f"{odds['culprit'][:12]} with P = {odds['p_culprit']:.3f}, after "
                               f"{odds['extra_runs']} extra runs (budget {odds['budget']})"
                               + (f"; the {what} commit is one of {len(cands)}: "
                                  + ", ".join(c[:12] for c in cands) if len(cands) > 1 else ""))
            return out
        culprit = odds["culprit"]
        out["culprit"] = self._describe(culprit)
        out.update(self._verify(culprit))
        if searched is not None and searched != [culprit]:
            out["flags"].append(f"the search's own verdicts left {', '.join(c[:12] for c in searched)}; "
                                f"all runs together name {culprit[:12]}")
        # The verification's runs are evidence too.
        odds = self.odds()
        out["odds"], out["p_culprit"] = odds, odds["p_culprit"]
        if out["status"] == "found" and (odds["culprit"] != culprit or odds["p_culprit"] < target):
            out["status"] = "inconclusive"
            mine = next((c["p_culprit"] for c in odds["commits"] if c["commit"] == culprit), 0.0)
            out["message"] = (f"after verification P({culprit[:12]}) = {mine:.3f}"
                              f" is below the target {target:g}" +
                              (f"; most likely now {odds['culprit'][:12]}" if odds["culprit"] != culprit else ""))
        elif out["status"] == "found":
            out["message"] += f", P(culprit) = {odds['p_culprit']:.3f}"
        return out

    # search() keeps its own state; these mirror it for the progress line.
    def _olds(self) -> list[str]:
        return self._olds_list

    def _cur_new(self, verdict: str, sha: str) -> str:
        new_is = GOOD if self.p.reverse else BAD
        if verdict == new_is:
            self._new = sha
        elif verdict in (GOOD, BAD):
            self._olds_list.append(sha)
        return self._new

    def _describe(self, sha: str) -> dict:
        d = self.tree.describe(sha)
        d["parents"] = self.tree.parents(sha)
        return d

    def _summary(self) -> dict:
        return {
            "params": asdict(self.p), "command": self.p.command(), "good": self.good, "bad": self.bad,
            "tree": str(self.tree.path), "recipe": self.recipe.name,
            "scenarios": [s.name for s in self.scenarios],
            "signature": self.signature.to_json() if self.signature else None,
            "failure_rate": round(self.p_fail, 4), "deterministic": self.deterministic,
            "runs_per_good": self.need, "tested": [asdict(t) for t in self.tested],
            "stats": {**self._totals(), "steps": len(self.tested),
                      "this_session": {
                          "wall_seconds": round(time.monotonic() - self.t0, 1), "builds": self.builds_done,
                          "build_seconds": round(self.build_seconds, 1),
                          "build_wait_seconds": round(self.build_wait, 1), "boots": self.boots,
                          "boot_seconds": round(self.boot_seconds, 1)}},
        }

    # ---------------------------------------------------------- outputs

    def write(self, result: dict) -> None:
        (self.out / "bisect.json").write_text(json.dumps(result, indent=2))
        (self.out / "bisect.md").write_text(bisect_report.markdown(result))
        (self.out / "junit.xml").write_text(bisect_report.junit(result))
