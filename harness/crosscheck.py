"""Comparing the reference model's predictions with what the kernel showed,
claim by claim. Every disagreement is a failed check that reads
"model: X, kernel: Y" and names the step."""
from __future__ import annotations

import json
import re
from typing import Any

from .checks import FAIL, PASS, CheckResult
from .model import Features, Run, predict, satisfies
from .model.timing import FAST_ONLINE_MS
from .model.prediction import MUST
from .observations import Observations
from .parsers import backtrace
from .scenario import Scenario


def features_for(obs: Observations, config: dict[str, str] | None, cmdline: str,
                 reverted: list[str] | None) -> Features:
    rows = next(iter(obs.snapshots.values())).ipi_names() if obs.snapshots else obs.boot_ipi_rows
    return Features.from_kernel(rows, config, cmdline=cmdline, reverted=reverted)


def run_model(scn: Scenario, features: Features) -> Run:
    return predict(scn.steps, features, scn.machine.cpus, reboot=scn.machine.reboot)


def _observed(aspect: str, name: str, obs: Observations) -> tuple[bool, Any]:
    """(comparable, observed value) for one claim aspect of step `name`."""
    rec = obs.steps.get(name)
    if rec is None:
        return False, None
    if aspect == "status":
        return rec.status is not None, rec.status
    if aspect.startswith("snapshot:"):
        label = rec_label(obs, name)
        snap = obs.snapshots.get(label) if label else None
        if snap is None:
            return False, None
        if aspect == "snapshot:columns":
            return True, snap.cpus
        return True, snap.row(aspect.split(":", 2)[2]) is not None
    if aspect.startswith("backtrace:"):
        bt = obs.backtraces(name)
        ipi = bt.sender is not None or any(f in (backtrace.FULL, backtrace.IDLE) for f in bt.forms().values())
        if aspect == "backtrace:mechanism":
            return True, "ipi" if ipi else "fallback"
        if aspect == "backtrace:sender":
            return bt.sender is not None, bt.sender
        if aspect == "backtrace:targets":
            return bt.targets is not None, bt.targets
        if aspect.startswith("backtrace:form:cpu"):
            return True, bt.forms().get(int(aspect.rsplit("cpu", 1)[1]))
        if aspect == "backtrace:wait":
            return True, rec.seconds >= 9.5
    if aspect.startswith("kdb:"):
        parsed = obs.kdb_output(name)
        session = parsed.sessions[-1] if parsed.sessions else None
        if aspect == "kdb:prompt":
            return "kdb_cpu" in rec.detail, f"[{rec.detail.get('kdb_cpu')}]kdb> "
        if aspect == "kdb:available":
            listed = session.status.listed if session and session.status else None
            return listed is not None, listed
        if aspect == "kdb:unresponsive":
            return bool(parsed.states), sorted(c for c, s in parsed.states.items() if s == "unresponsive")
        if aspect == "kdb:go_refused":
            return "go_refused" in rec.detail, rec.detail.get("go_refused")
        if aspect == "kdb:roundup_timeout":
            return True, "Timed out waiting for secondary CPUs." in obs.step_text(name)
        if aspect == "kdb:resumed":
            if rec.kind == "panic":
                # left with go, panic() went on to the notifiers
                return True, "GUEST_PANICKED" in rec.detail.get("qmp_events", [])
            return True, rec.status is not None
    if aspect.startswith("vcpus:cpu"):
        probe = obs.probes.get(rec.detail.get("probe", ""))
        locs = probe.locations().get(int(aspect[len("vcpus:cpu"):])) if probe else None
        return locs is not None, locs
    if aspect == "nmi:injected":
        return "injected" in rec.detail or "skipped" in rec.detail, "injected" in rec.detail
    if aspect == "panic:event":
        return True, "GUEST_PANICKED" in rec.detail.get("qmp_events", [])
    if aspect.startswith("hotplug:"):
        if aspect == "hotplug:status":
            return rec.status is not None, rec.status
        if aspect in ("hotplug:latency_class", "hotplug:latency_ms") and "latency_ms" in rec.detail:
            ms = rec.detail["latency_ms"]
            if aspect == "hotplug:latency_ms":
                return True, ms
            return True, "fast" if ms <= FAST_ONLINE_MS else "slow"
    return False, None


def rec_label(obs: Observations, name: str) -> str | None:
    rec = obs.steps[name]
    return rec.detail.get("label")


def _expected_ok(aspect: str, expected: Any, observed: Any) -> bool:
    if aspect == "hotplug:latency_class" and expected == "may-stall":
        return True
    if aspect.startswith("vcpus:"):
        # every sample of the probe must be somewhere the model allows
        return all(satisfies(expected, loc) for loc in observed)
    return satisfies(expected, observed)


def crosscheck(run: Run, obs: Observations) -> tuple[list[CheckResult], int]:
    """Checks for every claim the kernel's output can be compared with, and
    the number of claims that could not be compared (reported, not judged)."""
    results: list[CheckResult] = []
    skipped = 0
    for pred in run.predictions:
        for claim in pred.claim_details():
            aspect = claim.id[len(pred.name) + 1:]
            if aspect.startswith(("counter:", "report:", "outcome", "hotplug:online_after")):
                continue    # judged below over snapshot pairs / console, or not observable
            comparable, observed = _observed(aspect, pred.name, obs)
            if not comparable:
                skipped += 1
                continue
            ok = _expected_ok(aspect, claim.expected, observed)
            results.append(CheckResult(
                f"model: {claim.id}", PASS if ok else FAIL, json.dumps(claim.expected),
                json.dumps(observed) if ok else f"model: {json.dumps(claim.expected)}, kernel: {json.dumps(observed)}"
                f" ({claim.description})", pred.name))
        end = obs.steps[pred.name].end if pred.name in obs.steps else None
        for rep in pred.reports:
            if rep.when != MUST or end is None:
                continue
            found = re.search(rep.pattern, obs.console[:end + 4096], re.MULTILINE)
            results.append(CheckResult(
                f"model: {pred.name}:report:{rep.key}", PASS if found else FAIL, f"/{rep.pattern}/",
                f"found {found.group(0)!r}" if found else
                f"model: /{rep.pattern}/ by the end of the step ({rep.why}), kernel: not printed", pred.name))
    labels = [p.args["label"] for p in run.predictions if p.kind == "snapshot"]
    for a, b in zip(labels, labels[1:]):
        if a not in obs.snapshots or b not in obs.snapshots:
            continue
        before, after = obs.snapshots[a], obs.snapshots[b]
        for row, per_cpu in sorted(run.between(a, b).items()):
            for cpu, rng in sorted(per_cpu.items()):
                if rng.vacuous:
                    continue
                ra, rb = before.row(row), after.row(row)
                if ra is None or rb is None or cpu not in ra.counts or cpu not in rb.counts:
                    continue    # the snapshot claims above judge a missing row or column
                d = rb.counts[cpu] - ra.counts[cpu]
                ok = rng.contains(d)
                results.append(CheckResult(
                    f"model: {row} {a}->{b} CPU{cpu}", PASS if ok else FAIL, str(rng),
                    f"{d:+d}" if ok else f"model: {rng}, kernel: {d:+d}", None))
    return results, skipped
