"""The run as a timeline of predictions: branches for a step whose CPU is
not known, merged; claims and counter sums between snapshots."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable

from harness.model.expect import Range, one_of
from harness.model.features import EXACT_ROWS, Features
from harness.model.prediction import MAY, MUST, NEVER, Claim, PredictedLine, Prediction
from harness.model.state import MachineState, Span
from harness.parsers import cpulist


class Timeline:
    """Alternative futures: a step whose CPU is not known runs once per
    candidate and the predictions merge."""

    def branch(self, p: Prediction, candidates: list[int],
                fn: Callable[[Prediction, int], Span]) -> Span:
        """Run fn once per candidate CPU (an unknown sender) and merge."""
        if len(candidates) == 1:
            return fn(p, candidates[0])
        base = copy.deepcopy(self.state)
        results: list[tuple[Prediction, Span, MachineState]] = []
        for c in candidates:
            self.state = copy.deepcopy(base)
            q = copy.deepcopy(p)
            d = fn(q, c)
            results.append((q, d, self.state))
        _merge_into(p, [q for q, _, _ in results])
        states = [s for _, _, s in results]
        merged = states[0]
        keys = set().union(*(s.pending_csd for s in states))
        merged.pending_csd = {k: all(s.pending_csd.get(k, False) for s in states) for k in keys}
        if any([c.activity for c in s.cpus] != [c.activity for c in merged.cpus] for s in states):
            p.note("the state after this step depends on which CPU ran it; the model goes on "
                   f"as if CPU {candidates[0]} did")
        self.state = merged
        d = results[0][1]
        for _, dd, _ in results[1:]:
            d = d.union(dd)
        p.note(f"the CPU is not pinned: any of {cpulist.format(candidates)} may run it")
        return d


def _merge_into(p: Prediction, branches: list[Prediction]) -> None:
    """p := the union of alternative predictions (same step, other CPU)."""
    first = branches[0]
    p.outcome = set().union(*(b.outcome for b in branches))
    statuses = [b.status for b in branches]
    p.status = statuses[0] if all(s == statuses[0] for s in statuses) else one_of(s for s in statuses if s is not None)
    rows = set().union(*(b.counters for b in branches))
    p.counters = {}
    for row in rows:
        cpus = set().union(*(b.counters.get(row, {}) for b in branches))
        default = Range(0, 0) if row in EXACT_ROWS else Range(0, None)
        p.counters[row] = {}
        for c in cpus:
            r = None
            for b in branches:
                v = b.counters.get(row, {}).get(c, default)
                r = v if r is None else r.union(v)
            p.counters[row][c] = r
    if first.backtrace is not None:
        bts = [b.backtrace for b in branches if b.backtrace is not None]
        m = copy.deepcopy(bts[0])
        for bt in bts[1:]:
            m.sender |= bt.sender
            m.targets.update(bt.targets)
            for c, forms in bt.forms.items():
                m.forms[c] = m.forms.get(c, set()) | forms
            m.wait |= bt.wait
            m.swallowed = m.swallowed or bt.swallowed
            if bt.blocked_at is not None:
                m.blocked_at = bt.blocked_at
        p.backtrace = m
    if first.kdb is not None:
        ks = [b.kdb for b in branches if b.kdb is not None]
        m = copy.deepcopy(ks[0])
        for k in ks[1:]:
            m.cpu |= k.cpu
            m.available |= k.available
            m.printed = m.printed or k.printed
            m.unresponsive |= k.unresponsive
            m.roundup_timeout |= k.roundup_timeout
            m.go_refused |= k.go_refused
            m.resumed |= k.resumed
            m.current |= k.current
            m.lines = [ln for ln in m.lines if ln in k.lines]
        p.kdb = m
    # a report is certain only if every alternative makes it
    reports: dict[str, PredictedLine] = {}
    for b in branches:
        for r in b.console_lines:
            reports.setdefault(r.key, copy.deepcopy(r))
    for key, r in reports.items():
        whens = [{x.when for x in b.console_lines if x.key == key} for b in branches]
        if all(w == {NEVER} for w in whens):
            r.when = NEVER
        elif not all(MUST in w for w in whens):
            r.when = MAY
    p.console_lines = list(reports.values())
    for b in branches:
        for n in b.notes:
            p.note(n)


@dataclass
class ModelRun:
    features: Features
    cpus: int
    predictions: list[Prediction]
    final: MachineState

    def prediction(self, name: str) -> Prediction:
        for p in self.predictions:
            if p.name == name:
                return p
        raise KeyError(name)

    def console_lines(self) -> list[PredictedLine]:
        """Every console report over the whole run: MUST if some step makes it certain."""
        out: dict[str, PredictedLine] = {}
        for p in self.predictions:
            for r in p.console_lines:
                if r.key in out:
                    if r.when == MUST:
                        out[r.key].when = MUST
                else:
                    out[r.key] = copy.deepcopy(r)
        return list(out.values())

    def claim_details(self) -> list[Claim]:
        out: list[Claim] = []
        for p in self.predictions:
            out.extend(p.claim_details())
        return out

    def claims(self) -> list[tuple[str, str, Any]]:
        return [c.as_tuple() for c in self.claim_details()]

    def _snapshot_index(self, label: str) -> int:
        for i, p in enumerate(self.predictions):
            if p.snapshot is not None and p.snapshot.label == label:
                return i
        raise KeyError(f"no snapshot labelled {label!r} (or it was not reached)")

    def between(self, before: str, after: str) -> dict[str, dict[int, Range]]:
        """Predicted change of each IPI row per CPU between two snapshots,
        for the CPUs with a column in both: the sum of the steps' own
        contributions (exact rows exact, noisy rows bounded)."""
        i, j = self._snapshot_index(before), self._snapshot_index(after)
        if j < i:
            raise ValueError(f"snapshot {after!r} comes before {before!r}")
        cpus = sorted(set(self.predictions[i].snapshot.columns) & set(self.predictions[j].snapshot.columns))
        out: dict[str, dict[int, Range]] = {}
        for row in self.features.ipi_rows():
            default = Range(0, 0) if row in EXACT_ROWS else Range(0, None)
            out[row] = {}
            for c in cpus:
                total = Range(0, 0)
                for p in self.predictions[i + 1:j]:
                    if c in p.comparable_cpus:
                        total = total + p.counters.get(row, {}).get(c, default)
                    elif row not in EXACT_ROWS:
                        total = total + Range(0, None)
                if row not in EXACT_ROWS:
                    # Noisy rows move with any activity (the console's own
                    # commands send function-call and reschedule IPIs): only
                    # the lower bound is a prediction.
                    total = Range(total.lo, None)
                out[row][c] = total
        return out

    def to_json(self) -> dict:
        return {"features": self.features.to_json(), "cpus": self.cpus,
                "steps": [p.to_json() for p in self.predictions],
                "console_lines": [r.to_json() for r in self.console_lines()]}
