"""Comparing the reference model's predictions with what the kernel showed,
claim by claim. Every disagreement is a failed check that reads
"model: X, kernel: Y" and names the step. A claim the kernel's output
cannot be compared with is listed as not compared, with the reason: it
counts neither as passed nor as failed."""
from __future__ import annotations

import json
import re
from typing import Any

from harness.expect.checks import FAIL, MODEL, NOT_COMPARED, PASS, CheckResult
from harness.expect.observations import Observations
from harness.model import Features, ModelRun, predict, satisfies
from harness.model import prediction as pred_
from harness.model.timing import FAST_ONLINE_MS
from harness.scenario.types import Scenario

# How a step can be seen to end, from outside: the runner records it
# (Observations.ended) and the model's outcomes map onto these classes.
COMPLETED, HUNG, CRASHED, KDB_HELD, ABORTED, NOT_REACHED = (
    "completed", "hung", "crashed", "kdb-held", "aborted", "not-reached")
OUTCOME_CLASS = {
    pred_.OK: COMPLETED, pred_.REFUSED: COMPLETED, pred_.NO_EFFECT: COMPLETED,
    pred_.UNSUPPORTED: COMPLETED, pred_.OOPS: CRASHED, pred_.PANIC: CRASHED,
    pred_.HANG: HUNG, pred_.KDB_HELD: KDB_HELD, pred_.NOT_REACHED: NOT_REACHED,
    pred_.ABORTED: ABORTED,
}


def run_model(scn: Scenario, features: Features) -> ModelRun:
    return predict(scn.steps, features, scn.machine.cpus, reboot=scn.machine.reboot)


def observed_outcome(obs: Observations, name: str) -> str:
    """How step `name` ended, as seen by the runner."""
    end = obs.ended
    if end is not None and end["step"] == name:
        return end["how"]
    if name in obs.steps:
        return COMPLETED
    return NOT_REACHED if end is not None else ""


def _observed(aspect: str, name: str, obs: Observations) -> tuple[bool, Any, str]:
    """(comparable, observed value, why not comparable) for one claim
    aspect of step `name`."""
    rec = obs.steps.get(name)
    if aspect == "outcome":
        seen = observed_outcome(obs, name)
        return bool(seen), seen, "the run ended before it could tell"
    if rec is None:
        return False, None, "the step did not run"
    if aspect == "status":
        return rec.status is not None, rec.status, "the step has no exit status"
    if aspect.startswith("snapshot:"):
        label = rec.detail.get("label")
        snap = obs.snapshots.get(label) if label else None
        if snap is None:
            return False, None, "no snapshot was parsed"
        if aspect == "snapshot:columns":
            return True, snap.cpus, ""
        return True, snap.row(aspect.split(":", 2)[2]) is not None, ""
    if aspect.startswith("backtrace:"):
        bt = obs.backtraces(name)
        if aspect == "backtrace:mechanism":
            return True, bt.mechanism or "none", ""
        # A line the reference kernel prints, missing from this kernel's
        # output, is a disagreement (observed null), not "not compared":
        # over one suite run's 495 runs these were "not compared" 68 times,
        # every one on a kernel without f15c21a3de1b (issue 19).
        if aspect == "backtrace:sender":
            return True, bt.sender, ""
        if aspect == "backtrace:targets":
            return True, bt.targets, ""
        if aspect.startswith("backtrace:form:cpu"):
            return True, bt.forms().get(int(aspect.rsplit("cpu", 1)[1])), ""
        if aspect == "backtrace:wait":
            return True, rec.seconds >= 9.5, ""
    if aspect.startswith("kdb:"):
        parsed = obs.kdb_output(name)
        session = parsed.sessions[-1] if parsed.sessions else None
        if aspect == "kdb:prompt":
            return "kdb_cpu" in rec.detail, f"[{rec.detail.get('kdb_cpu')}]kdb> ", "kdb was not entered"
        if aspect == "kdb:available":
            return True, session.status.listed if session and session.status else None, ""
        if aspect == "kdb:unresponsive":
            return (bool(parsed.states), sorted(c for c, s in parsed.states.items() if s == "unresponsive"),
                    "no CPU states were printed")
        if aspect == "kdb:go_refused":
            return "go_refused" in rec.detail, rec.detail.get("go_refused"), "go was not sent"
        if aspect == "kdb:roundup_timeout":
            return True, "Timed out waiting for secondary CPUs." in obs.step_text(name), ""
        if aspect == "kdb:resumed":
            if rec.kind == "panic":
                # left with go, panic() went on to the notifiers
                return True, "GUEST_PANICKED" in rec.detail.get("qmp_events", []), ""
            return True, rec.status is not None, ""
    if aspect.startswith("vcpus:cpu"):
        probe = obs.probes.get(rec.detail.get("probe", ""))
        locs = probe.locations().get(int(aspect[len("vcpus:cpu"):])) if probe else None
        return locs is not None, locs, "the probe has no sample of that vCPU"
    if aspect == "nmi:injected":
        return ("injected" in rec.detail or "skipped" in rec.detail, "injected" in rec.detail,
                "QEMU answered neither way")
    if aspect == "panic:event":
        return True, "GUEST_PANICKED" in rec.detail.get("qmp_events", []), ""
    if aspect.startswith("hotplug:"):
        if aspect == "hotplug:status":
            return rec.status is not None, rec.status, "the write has no exit status"
        if aspect in ("hotplug:latency_class", "hotplug:latency_ms"):
            if "latency_ms" not in rec.detail:
                return False, None, "no latency was measured"
            ms = rec.detail["latency_ms"]
            if aspect == "hotplug:latency_ms":
                return True, ms, ""
            return True, "fast" if ms <= FAST_ONLINE_MS else "slow", ""
    return False, None, "the harness does not observe this"


def _vacuous(aspect: str, expected: Any) -> str | None:
    """Why a claim admits every observation (so it compares nothing), or None."""
    if aspect == "hotplug:latency_class" and expected == "may-stall":
        return "the model allows a fast or a stalled online: any latency satisfies 'may-stall'"
    if aspect == "outcome" and isinstance(expected, dict) and pred_.UNMODELLED in expected.get("one_of", []):
        return "the model does not know this step's effect"
    return None


def _expected_ok(aspect: str, expected: Any, observed: Any) -> bool:
    if aspect == "outcome":
        allowed = expected.get("one_of", []) if isinstance(expected, dict) else [expected]
        return observed in {OUTCOME_CLASS.get(o, o) for o in allowed}
    if aspect.startswith("vcpus:"):
        # every sample of the probe must be somewhere the model allows
        return all(satisfies(expected, loc) for loc in observed)
    return satisfies(expected, observed)


def _check(name: str, ok: bool, expected: Any, observed: Any, description: str, step: str | None) -> CheckResult:
    return CheckResult(
        name, PASS if ok else FAIL, json.dumps(expected),
        json.dumps(observed) if ok else f"model: {json.dumps(expected)}, kernel: {json.dumps(observed)}"
        f" ({description})", step, origin=MODEL)


def _not_compared(name: str, expected: Any, why: str, step: str | None) -> CheckResult:
    return CheckResult(name, NOT_COMPARED, json.dumps(expected), f"not compared: {why}", step, origin=MODEL)


def crosscheck(run: ModelRun, obs: Observations) -> list[CheckResult]:
    """A check for every claim of the model: compared with the kernel's
    output (pass or fail), or not compared with the reason."""
    results: list[CheckResult] = []
    rows = run.features.ipi_rows()
    if obs.boot_ipi_rows or obs.steps:
        # Read after boot, before the first step: a step ran, so the rows
        # were read, and none parsed is a disagreement, not silence.
        results.append(_check("model: boot:ipi_rows", obs.boot_ipi_rows == rows, rows, obs.boot_ipi_rows,
                              "the IPI rows of /proc/interrupts after boot, in order", None))
    else:
        results.append(_not_compared("model: boot:ipi_rows", rows, "the run ended before /proc/interrupts "
                                     "was read after boot", None))
    for pred in run.predictions:
        for claim in pred.claim_details():
            aspect = claim.id[len(pred.name) + 1:]
            if aspect.startswith(("counter:", "report:", "hotplug:online_after")):
                continue    # judged below over snapshot pairs / console; online_after: the next steps' columns
            name = f"model: {claim.id}"
            if why := _vacuous(aspect, claim.expected):
                results.append(_not_compared(name, claim.expected, why, pred.name))
                continue
            comparable, observed, why = _observed(aspect, pred.name, obs)
            if not comparable:
                results.append(_not_compared(name, claim.expected, why, pred.name))
                continue
            results.append(_check(name, _expected_ok(aspect, claim.expected, observed), claim.expected,
                                  observed, claim.description, pred.name))
        rec = obs.steps.get(pred.name)
        for rep in pred.console_lines:
            if rep.when == pred_.NEVER and rec is not None:
                # To the console's end: the kernel may print it after the
                # step's prompt came back, and it is still the step's doing.
                seen = re.search(rep.pattern, obs.console[rec.start:], re.MULTILINE)
                results.append(CheckResult(
                    f"model: {pred.name}:console:{rep.key}", FAIL if seen else PASS, f"no /{rep.pattern}/",
                    f"model: never /{rep.pattern}/ ({rep.why}), kernel: printed {seen.group(0)!r}" if seen
                    else "not printed", pred.name, origin=MODEL))
                continue
            if rep.when != pred_.MUST:
                continue
            name = f"model: {pred.name}:console:{rep.key}"
            if rec is None:
                results.append(_not_compared(name, rep.pattern, "the step did not run", pred.name))
                continue
            # The step's own window only: searched from the console's start
            # (to the step's end + 4 KiB, as it was), a repeated step passed
            # on an earlier round's line. Measured over one suite run's 740
            # run directories (bench/console_windows): each of the 2,051 MUST
            # lines found the old way was also inside its step's window
            # (docs/model.md, "Where a console line is looked for").
            found = re.search(rep.pattern, obs.step_text(pred.name), re.MULTILINE)
            results.append(CheckResult(
                name, PASS if found else FAIL, f"/{rep.pattern}/",
                f"found {found.group(0)!r}" if found else
                f"model: /{rep.pattern}/ in the step's own output ({rep.why}), kernel: not printed", pred.name,
                origin=MODEL))
    results.extend(_counter_claims(run, obs))
    return results


def _counter_claims(run: ModelRun, obs: Observations) -> list[CheckResult]:
    """The model's counter ranges between consecutive snapshots. A snapshot
    whose step ran but that was not parsed, or was corrupted, and a row the
    model claims that a snapshot lacks, fail: they used to be skipped, and
    a corrupted snapshot was used as read (issue 19)."""
    results: list[CheckResult] = []
    steps = {p.args["label"]: p.name for p in run.predictions if p.kind == "snapshot"}
    labels = list(steps)
    for a, b in zip(labels, labels[1:]):
        claims = {row: {c: r for c, r in per_cpu.items() if not r.vacuous}
                  for row, per_cpu in sorted(run.between(a, b).items())}
        claims = {row: per_cpu for row, per_cpu in claims.items() if per_cpu}
        if not claims:
            continue
        if steps[a] not in obs.steps or steps[b] not in obs.steps:
            continue    # the run ended first: the step's own claims say so
        unread = [lbl for lbl in (a, b) if lbl not in obs.snapshots or obs.snapshots[lbl].corrupted]
        if unread:
            results.append(CheckResult(
                f"model: counters {a}->{b}", FAIL, f"{sum(map(len, claims.values()))} counter ranges",
                f"snapshot(s) {', '.join(unread)} not read cleanly (missing or corrupted /proc/interrupts), "
                "so no counter claim between them can be judged", None, origin=MODEL))
            continue
        before, after = obs.snapshots[a], obs.snapshots[b]
        for row, per_cpu in claims.items():
            for cpu, rng in sorted(per_cpu.items()):
                name = f"model: {row} {a}->{b} CPU{cpu}"
                ra, rb = before.row(row), after.row(row)
                if ra is None or rb is None:
                    results.append(CheckResult(
                        name, FAIL, str(rng), f"model: {rng}, kernel: no '{row}' row in snapshot "
                        f"'{a if ra is None else b}'", None, origin=MODEL))
                    continue
                if cpu not in ra.counts or cpu not in rb.counts:
                    results.append(CheckResult(
                        name, FAIL, str(rng), f"model: {rng}, kernel: no CPU{cpu} column in snapshot "
                        f"'{a if cpu not in ra.counts else b}' (the model has CPU {cpu} online)", None,
                        origin=MODEL))
                    continue
                d = rb.counts[cpu] - ra.counts[cpu]
                ok = rng.contains(d)
                results.append(CheckResult(
                    name, PASS if ok else FAIL, str(rng),
                    f"{d:+d}" if ok else f"model: {rng}, kernel: {d:+d}", None, origin=MODEL))
    return results
