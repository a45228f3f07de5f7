"""Verifying a bisect's culprit: it fails, its parent passes, and its revert
on top of the new endpoint passes (the opposite for --reverse), each as
often as a verdict needs, to the stated confidence."""
from __future__ import annotations

from harness.bisect.steplog import Tested
from harness.decide.bisect_step import INFRA_V, SKIP_V, confidence_of


class CulpritVerification:
    """The Bisector's last steps, once the search has one candidate."""

    def _verify(self, culprit: str) -> dict:
        """Culprit N/N, parent N/N, revert on top of the new endpoint N/N."""
        n = self.need
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
