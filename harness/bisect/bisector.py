"""rvharness bisect: the first bad commit between a good and a bad one, with
skips, infrastructure errors, repeats to a stated confidence and a verified
culprit. docs/bisect.md describes the method and its measurements.

The search itself (`search`) is pure: it takes a history (git's, or a fake
one in the unit tests) and a judge that gives each commit its verdict. The
`Bisector` is the real judge: it builds each commit (harness/kernel/gitbuild.py),
runs the scenarios as often as the confidence needs (harness/run/repeats.py),
logs every build, run and verdict to OUT/steps.jsonl as it happens, and
answers from that log when a killed bisect is resumed."""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import shlex
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from harness.core.errors import HarnessError, InputError
from harness.core.paths import REPO_ROOT
from harness.kernel import initramfs
from harness.kernel.gitbuild import BUILT, CommitBuild, GitTree, TreeBuilder, check_recipe_source
from harness.kernel.kbuild import BuiltKernel
from harness.kernel.recipe import load_recipe
from harness.outputs import bisect_report
from harness.run import repeats
from harness.run.repeats import (
    BAD,
    GOOD,
    INFRA_V,
    SIGNATURE,
    SKIP_V,
    Decision,
    Run,
    Signature,
    classify,
    confidence_of,
    decide,
    failure_rate,
    runs_for,
)
from harness.scenario import parse as scenario

DEFAULT_RECIPE = REPO_ROOT / "kernels" / "default.yaml"
ENDPOINT_RUNS = 3        # runs of the failing endpoint that estimate the failure rate
EXIT_FOUND, EXIT_INCONCLUSIVE, EXIT_ERROR = 0, 1, 2


class BisectAbort(HarnessError):
    """The bisect cannot go on (infra, endpoints): exit 2, with the outputs written."""


# ------------------------------------------------------------------ search

class History(Protocol):
    def bisect_order(self, bad: str, goods: list[str]) -> list[str]: ...
    def range(self, bad: str, goods: list[str]) -> list[str]: ...


@dataclass
class SearchResult:
    candidates: list[str]           # the first new commit is one of these (1: found)
    old: list[str]                  # commits judged like the old endpoint
    new: str                        # the oldest commit judged like the new endpoint
    skipped: list[str]
    aborted: str = ""               # why the search stopped early


def search(history: History, old: str, new: str, judge: Callable[[str], str],
           is_new: Callable[[str], bool], steps_done: Callable[[], int] = lambda: 0,
           infra_count: Callable[[], int] = lambda: 0) -> SearchResult:
    """git bisect over history: judge(commit) -> GOOD/BAD/SKIP_V/INFRA_V;
    is_new(verdict) tells which verdicts are the new endpoint's. Skipped
    and infra commits are stepped around, like `git bisect skip`. Stops when
    infra verdicts exceed a third of all tested commits (steps_done())."""
    olds, cur_new, skipped = [old], new, []
    while True:
        order = [c for c in history.bisect_order(cur_new, olds) if c != cur_new and c not in skipped]
        if not order:
            break
        pick = order[0]
        verdict = judge(pick)
        if verdict in (SKIP_V, INFRA_V):
            skipped.append(pick)
            if verdict == INFRA_V and 3 * infra_count() > steps_done():
                return SearchResult(history.range(cur_new, olds), olds, cur_new, skipped,
                                    f"infrastructure failed in {infra_count()} of {steps_done()} "
                                    "tested commits (more than a third)")
        elif is_new(verdict):
            cur_new = pick
        else:
            olds.append(pick)
    return SearchResult(history.range(cur_new, olds), olds, cur_new, skipped)


def steps_left(candidates: int) -> int:
    return math.ceil(math.log2(candidates)) if candidates > 1 else 0


# ------------------------------------------------------------------ records

@dataclass
class Params:
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


# ------------------------------------------------------------------ the bisector

class Bisector:
    def __init__(self, params: Params, out: Path, resume: bool = False, say=None,
                 on_boot: Callable | None = None, builder: TreeBuilder | None = None,
                 run_once: Callable[..., Run] | None = None) -> None:
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
        self.builds: dict[str, dict] = {r["commit"]: r for r in self.log.of("build")}
        self.runs: dict[str, list[Run]] = {}
        for r in self.log.of("run"):
            self.runs.setdefault(r["image"], []).append(Run.from_json(r["run"]))
        self.done: dict[tuple[str, str], Tested] = {}
        for r in self.log.of("step"):
            t = Tested(**{k: v for k, v in r.items() if k in Tested.__dataclass_fields__})
            self.done[(t.commit, t.role)] = t
        self.tested: list[Tested] = []
        self.image_owner: dict[str, str] = {}    # Image digest -> short id of the first commit with it
        sig = self.log.of("signature")
        self.signature: Signature | None = Signature.from_json(sig[-1]["signature"]) if sig else None
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

    # ---------------------------------------------------------- building

    def _build(self, sha: str) -> tuple[CommitBuild | dict, BuiltKernel | None]:
        rec = self.builds.get(sha)
        if rec is not None and (rec["status"] != BUILT or (Path(rec["kernel_dir"]) / ".complete").exists()):
            kernel = (BuiltKernel(rec["key"], Path(rec["kernel_dir"]), f"{self.recipe.name}@{sha[:12]}",
                                  self.recipe.arch, self.recipe.model_without, self.recipe.cmdline)
                      if rec["status"] == BUILT else None)
            return rec, kernel
        res = self.builder.build(sha, self.out / "builds")
        if not res.cached:
            self.builds_done += 1
            self.build_seconds += res.seconds
        self.build_wait += res.waited
        rec = {"type": "build", **res.to_json()}
        self.builds[sha] = rec
        self.log.append(rec)
        return rec, res.kernel

    # ---------------------------------------------------------- running

    def _run(self, kernel: BuiltKernel, image: str, short: str, n: int = 1) -> Run:
        """n > 1: n runs at once (-j), each recorded as if run in turn; returns the last."""
        if self.initrd is None:
            self.initrd = initramfs.build(self.recipe.arch)
        index = len(self.runs.get(image, [])) + 1
        t0 = time.monotonic()
        if n > 1:
            runs = repeats.run_many(self.scenarios, kernel, self.initrd, self.out / "runs",
                                    list(range(index, index + n)), label=short, jobs=self.p.jobs)
        else:
            runs = [self.run_once(self.scenarios, kernel, self.initrd, self.out / "runs", index,
                                  label=short, on_boot=self.on_boot)]
        self.boot_seconds += time.monotonic() - t0
        self.unattributed[image] = self.unattributed.get(image, 0) + len(runs)
        for run in runs:
            self.boots += 1
            self.runs.setdefault(image, []).append(run)
            self.log.append({"type": "run", "image": image, "commit": short, "run": run.to_json()})
        return runs[-1]

    def _batch(self, d: Decision, need_clean: int) -> int:
        """How many runs to start at once: with -j, as many as could still
        be needed for 'good' (more would be boots thrown away), at most j."""
        if self.p.jobs <= 1 or self.on_boot is not None or self.run_once is not repeats.run_once:
            return 1
        judged = d.clean + d.signature + d.unrelated
        return max(1, min(self.p.jobs, need_clean - d.clean, self.p.max_repeats - judged))

    def _classes(self, image: str) -> list[tuple[str, str]]:
        assert self.signature is not None
        return [classify(r, self.signature) for r in self.runs.get(image, [])]

    # ---------------------------------------------------------- one step

    def _progress(self, n: int, sha: str, subject: str, what: str) -> None:
        total = n + steps_left(self.candidates_left) + (0 if self.candidates_left > 1 else 1)
        left = f" ({self.candidates_left} candidates left)" if self.candidates_left else ""
        self.say(f"step {n} of ~{max(n, total)}: {sha[:12]} '{subject[:60]}'{left} — {what}")

    def test(self, sha: str, role: str, need_clean: int, stop_on_signature: bool = True,
             display: str | None = None) -> Tested:
        """Build sha and run it until its verdict is known; log the step."""
        prior = self.done.get((sha, role))
        if prior is not None:
            self.tested.append(prior)
            if prior.image:
                self.image_owner.setdefault(prior.image, prior.short)
            self.say(f"step {prior.step}: {prior.short} '{prior.subject[:60]}' — {prior.verdict} "
                     f"({prior.reason}) [from the step log]")
            return prior
        n = len(self.tested) + 1
        info = self.tree.describe(sha) if display is None else {"short": sha[:12], "subject": display}
        subject = info["subject"]
        short = sha[:12]
        t0 = time.monotonic()
        self._progress(n, sha, subject, "building…")
        rec, kernel = self._build(sha)
        t = Tested(n, sha, short, subject, role, "", "", image=rec.get("image_sha256", ""),
                   key=rec.get("key", ""), build=rec["status"], build_seconds=rec.get("seconds", 0.0),
                   build_cached=rec.get("cached", False),
                   time=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
        if kernel is None:
            t.verdict, t.reason = SKIP_V, (rec.get("reason") or rec["status"])
            if rec["status"] == "build-failed":
                t.reason = "build failed: " + t.reason
            return self._finish(t, t0)
        owner = self.image_owner.get(t.image)
        if owner is not None and owner != short:
            t.same_image_as = owner
        self.image_owner.setdefault(t.image, short)
        while True:
            d = decide(self._classes(t.image), need_clean, self.p.max_repeats, stop_on_signature)
            if d.verdict is not None:
                break
            self._progress(n, sha, subject, f"booting run {len(self.runs.get(t.image, [])) + 1}…")
            self._run(kernel, t.image, short, self._batch(d, need_clean))
        t.verdict, t.reason = d.verdict, d.reason
        t.clean, t.signature, t.unrelated, t.infra = d.clean, d.signature, d.unrelated, d.infra
        # A QEMU killed from outside was booted again by the runner: an
        # infrastructure failure, retried, whose run then counted normally.
        t.infra += sum(r.infra_retries for r in self.runs.get(t.image, []))
        t.boots = self.unattributed.pop(t.image, 0)
        if t.same_image_as and t.boots == 0:
            t.reason = f"same Image as {t.same_image_as}: {t.reason}"
        elif t.same_image_as:
            t.reason = f"same Image as {t.same_image_as} (runs shared): {t.reason}"
        return self._finish(t, t0)

    def _finish(self, t: Tested, t0: float) -> Tested:
        t.seconds = round(time.monotonic() - t0, 1)
        self.tested.append(t)
        self.done[(t.commit, t.role)] = t
        self.log.append({"type": "step", **asdict(t)})
        self.say(f"step {t.step}: {t.short} — {t.verdict} ({t.reason}) runs clean/signature/other/infra "
                 f"{t.counts}, {t.seconds:.0f} s")
        return t

    # ---------------------------------------------------------- endpoints

    def _endpoints(self) -> None:
        passing, failing = (self.bad, self.good) if self.p.reverse else (self.good, self.bad)
        pname, fname = ("--bad", "--good") if self.p.reverse else ("--good", "--bad")
        for sha, name in ((passing, pname), (failing, fname)):
            if sha not in self.builds:
                self.say(f"endpoint {name} {sha[:12]} '{self.tree.describe(sha)['subject'][:60]}' — building…")
        prec, pk = self._build(passing)
        frec, fk = self._build(failing)
        for rec, k, name in ((prec, pk, pname), (frec, fk, fname)):
            if k is None:
                raise BisectAbort(f"{name} {rec['commit'][:12]} cannot be built: "
                                  f"{rec.get('reason') or rec['status']}")
        if prec["image_sha256"] == frec["image_sha256"]:
            raise BisectAbort(f"{pname} and {fname} build byte-identical Images: the difference "
                              "is not in the kernel")
        prole = "bad endpoint" if self.p.reverse else "good endpoint"
        frole = "good endpoint" if self.p.reverse else "bad endpoint"
        # One run of the passing endpoint first: a broken "good" is found cheaply.
        self._endpoint_pass_check(passing, prec, pk, pname)
        # The failing endpoint: its runs give the signature and the failure rate.
        if self.signature is None:
            self._failing_runs(failing, frec, fk, fname)
        img = frec["image_sha256"]
        judged = [r for r in self.runs[img] if not r.infra and not r.skipped]
        sig_runs = sum(classify(r, self.signature)[0] == SIGNATURE for r in judged)
        self.p_fail = failure_rate(sig_runs, len(judged))
        self.deterministic = sig_runs == len(judged)
        self.need_exact = runs_for(self.p_fail, self.p.confidence)
        self.need = min(self.need_exact, self.p.max_repeats)
        ft = self.test(failing, frole, self.need)
        if ft.verdict != BAD:
            raise BisectAbort(f"{fname} {failing[:12]}: {ft.reason}")
        pt = self.test(passing, prole, self.need)
        if pt.verdict != GOOD:
            raise BisectAbort(f"the {prole} {passing[:12]} ({pname}) does not pass: {pt.reason}")

    def _endpoint_pass_check(self, sha: str, rec: dict, kernel: BuiltKernel, name: str) -> None:
        img = rec["image_sha256"]
        if self.runs.get(img):
            return
        for _ in range(1 + repeats.INFRA_RETRIES):
            self.say(f"checking {name} {sha[:12]}: run 1…")
            run = self._run(kernel, img, sha[:12])
            if not run.infra:
                break
        else:
            raise BisectAbort(f"{name} {sha[:12]}: infrastructure failed twice: {run.infra}")
        if run.skipped:
            raise BisectAbort(f"{name} {sha[:12]}: the scenario cannot run there: {run.skipped}")
        if run.failed:
            raise BisectAbort(f"the {'new' if self.p.reverse else 'good'} endpoint {name} {sha[:12]} "
                              f"fails: {'; '.join(run.failed)[:300]} (console logs under "
                              f"{self.out / 'runs'})")

    def _failing_runs(self, sha: str, rec: dict, kernel: BuiltKernel, name: str) -> None:
        img = rec["image_sha256"]
        infra_in_row = 0
        while True:
            runs = [r for r in self.runs.get(img, []) if not r.infra]
            failing = [r for r in runs if r.failed]
            if len(runs) >= ENDPOINT_RUNS and failing or len(runs) >= self.p.max_repeats:
                break
            self.say(f"checking {name} {sha[:12]}: run {len(runs) + 1}…")
            run = self._run(kernel, img, sha[:12])
            infra_in_row = infra_in_row + 1 if run.infra else 0
            if infra_in_row > repeats.INFRA_RETRIES:
                raise BisectAbort(f"{name} {sha[:12]}: infrastructure failed twice: {run.infra}")
            if run.skipped:
                raise BisectAbort(f"{name} {sha[:12]}: the scenario cannot run there: {run.skipped}")
        if not failing:
            which = "the old endpoint (--good, with --reverse)" if self.p.reverse else "--bad"
            raise BisectAbort(f"the scenario does not fail on {which} {sha[:12]}: "
                              f"{len(runs)} runs passed")
        sig = Signature.of_runs(runs, self.p.checks)
        if not sig.checks:
            seen = sorted({c for r in failing for c in r.failed})
            raise BisectAbort(f"--checks {' '.join(self.p.checks)} names no check that failed on {name}; "
                              f"failed there: {'; '.join(seen)[:400]}")
        self.signature = sig
        self.log.append({"type": "signature", "signature": sig.to_json()})

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
        res = search(self.tree, old, new, judge, lambda v: v == new_is,
                     steps_done=lambda: len(self.tested),
                     infra_count=lambda: sum(t.verdict == INFRA_V for t in self.tested))
        if res.aborted:
            raise BisectAbort(res.aborted)
        out: dict = {"candidates": [self._describe(c) for c in res.candidates]}
        if len(res.candidates) != 1:
            out.update(status="inconclusive",
                       message=f"the first {'fixed' if self.p.reverse else 'bad'} commit is one of "
                               f"{len(res.candidates)}: " + ", ".join(c[:12] for c in res.candidates)
                               + " (skipped commits in between could not be tested)")
            return out
        culprit = res.candidates[0]
        out["culprit"] = self._describe(culprit)
        out.update(self._verify(culprit))
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

    def _verify(self, culprit: str) -> dict:
        """Culprit N/N, parent N/N, revert on top of the new endpoint N/N."""
        n = self.need
        fails_role = "culprit" if not self.p.reverse else "parent"
        parents = self.tree.parents(culprit)
        flags = []
        if len(parents) > 1:
            flags.append(f"the culprit is a merge of {len(parents)} parents")
        ct = self.test(culprit, "culprit", n, stop_on_signature=False)
        pt = self.test(parents[0], "parent", n, stop_on_signature=False) if parents else None
        if pt is not None and pt.image and pt.image == ct.image:
            flags.append(f"the culprit's Image is identical to its parent's ({pt.short}): "
                         "the change cannot be in the kernel")
        revert_tree, why = self.tree.revert_applies(culprit, self.bad)
        rt = None
        if revert_tree is None:
            revert_note = f"the revert of {culprit[:12]} does not apply on top of {self.bad[:12]}: {why}"
        else:
            sha = self.tree.commit_tree(revert_tree, self.bad, f"Revert {culprit[:12]} (rvharness bisect)")
            rt = self.test(sha, "revert", n, stop_on_signature=False,
                           display=f"revert of {culprit[:12]} on top of {self.bad[:12]}")
            revert_note = ""

        def holds(t: Tested | None, want_fail: bool) -> bool:
            if t is None or t.verdict in (SKIP_V, INFRA_V):
                return False
            if want_fail:
                need = n if self.deterministic else 1
                return t.signature >= need and t.clean + t.signature >= n and t.unrelated == 0
            return t.clean >= n and t.signature == 0 and t.unrelated == 0

        # Normal: culprit fails, parent passes, revert passes. Reverse (a fix): the opposite.
        rev = self.p.reverse
        checks = {"culprit": holds(ct, not rev), "parent": holds(pt, rev), "revert": holds(rt, rev)}
        passing = [t for t in ((ct,) if rev else (pt, rt)) if t is not None]
        conf = min((confidence_of(t.clean, self.p_fail) for t in passing), default=0.0)
        verified = all(checks.values())
        status = "found" if verified and conf >= self.p.confidence else "inconclusive"
        why_not = []
        if not verified:
            why_not.append("verification failed: " + ", ".join(k for k, v in checks.items() if not v))
        if conf < self.p.confidence:
            why_not.append(f"confidence {conf:.3f} is below the target {self.p.confidence:g}"
                           + (f" (a good verdict needs {self.need_exact} clean runs, --max-repeats "
                              f"{self.p.max_repeats})" if self.need_exact > self.p.max_repeats else ""))
        if revert_note:
            why_not.append(revert_note)
        return {"status": status, "confidence": round(conf, 4), "flags": flags,
                "verification": {
                    "n": n, "checks": checks, "revert_note": revert_note,
                    "culprit": self._tcounts(ct), "parent": self._tcounts(pt), "revert": self._tcounts(rt)},
                "message": "; ".join(why_not) if why_not else
                           f"{'fixed' if rev else 'first bad'} commit {culprit[:12]} verified, "
                           f"confidence {conf:.3f}"}

    @staticmethod
    def _tcounts(t: Tested | None) -> dict | None:
        if t is None:
            return None
        judged = t.clean + t.signature + t.unrelated
        return {"commit": t.commit, "short": t.short, "verdict": t.verdict, "clean": t.clean,
                "signature": t.signature, "unrelated": t.unrelated, "infra": t.infra, "runs": judged,
                "reason": t.reason}

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

    # ---------------------------------------------------------- outputs

    def write(self, result: dict) -> None:
        (self.out / "bisect.json").write_text(json.dumps(result, indent=2))
        (self.out / "bisect.md").write_text(bisect_report.markdown(result))
        (self.out / "junit.xml").write_text(bisect_report.junit(result))
