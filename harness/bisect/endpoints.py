"""The endpoint checks that open a bisect: both endpoints build to different
Images, the passing one passes, and the failing one's runs give the failure
signature and rate that size every later step."""
from __future__ import annotations

from harness.core.errors import HarnessError
from harness.decide import bisect_step
from harness.decide.bisect_step import BAD, GOOD, SIGNATURE, Signature, classify, failure_rate, runs_for
from harness.kernel.kbuild import BuiltKernel

ENDPOINT_RUNS = 3        # runs of the failing endpoint that estimate the failure rate


class BisectAbort(HarnessError):
    """The bisect cannot go on (infra, endpoints): exit 2, with the outputs written."""


class EndpointChecks:
    """The Bisector's first steps, before the search (they set self.signature,
    self.p_fail, self.deterministic and self.need)."""

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
        # A flaky failure is searched by the posterior, which asks the passing
        # endpoint for more runs only when they tell something; a
        # deterministic one tops it up to k clean runs for git bisect's rule.
        pt = self.test(passing, prole, self.need if self.deterministic else 1)
        if pt.verdict != GOOD:
            raise BisectAbort(f"the {prole} {passing[:12]} ({pname}) does not pass: {pt.reason}")

    def _endpoint_pass_check(self, sha: str, rec: dict, kernel: BuiltKernel, name: str) -> None:
        img = rec["image_sha256"]
        if self.runs.get(img):
            return
        for _ in range(1 + bisect_step.INFRA_RETRIES):
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
            if infra_in_row > bisect_step.INFRA_RETRIES:
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
