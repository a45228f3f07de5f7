"""One bisect step: build a commit (harness/kernel/gitbuild.py) and run the
scenarios on it (harness/run/repeats.py) until its verdict is known, each
build, run and verdict logged to the step log as it happens."""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import asdict
from pathlib import Path

from harness.bisect.search import steps_left
from harness.bisect.steplog import Tested
from harness.decide.bisect_step import SKIP_V, Decision, classify, decide
from harness.kernel import initramfs
from harness.kernel.gitbuild import BUILT, CommitBuild
from harness.kernel.kbuild import BuiltKernel
from harness.run import repeats
from harness.run.repeats import SuiteRun


class StepJudging:
    """The Bisector's steps: test() gives a commit its verdict in a role,
    from the step log when a resumed bisect already knows it."""

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

    def _run(self, kernel: BuiltKernel, image: str, short: str, n: int = 1) -> SuiteRun:
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
