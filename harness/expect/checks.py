"""Evaluating a scenario's expectations against what was observed. Every
result says what was expected and what was observed."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from harness.expect.observations import Observations
from harness.parsers import backtrace, console_lines, cpulist, reports
from harness.parsers.interrupts import delta
from harness.scenario.types import Expectation

PASS, FAIL, SKIP, ERROR = "pass", "fail", "skip", "error"
# A claim the kernel's output could not be compared with: shown with its
# reason, counted neither as passed nor as failed.
NOT_COMPARED = "not-compared"

# Where a check comes from: the scenario's own expectations (and the
# implicit ones every scenario has: the guest boots all CPUs, answers and
# does not crash), or the reference model's claims.
EXPECTATION, MODEL = "expectation", "model"


@dataclass
class CheckResult:
    name: str
    verdict: str
    expected: str
    observed: str
    step: str | None = None
    message: str = ""
    origin: str = EXPECTATION

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _per_cpu(table: dict, cpus: list[int]) -> dict[int, int]:
    """Expand {1: 0, others: 1} over the CPUs present."""
    out = {c: table["others"] for c in cpus if "others" in table}
    out.update({c: v for c, v in table.items() if c != "others"})
    return out


def expected_of(exp: Expectation, obs: Observations | None = None) -> str:
    a = exp.args
    if exp.kind == "counter":
        parts = [f"{k} {a[k]}" for k in ("delta", "at_least", "at_most") if a[k] is not None]
        return f"'{a['row']}' {a['between'][0]}->{a['between'][1]}: " + ", ".join(parts)
    if exp.kind == "backtrace":
        s = f"every online CPU accounted for after step '{a['step']}' by an IPI backtrace"
        if a["accounted"] != "online":
            s = f"backtraces after step '{a['step']}'"
        if a["forms"]:
            s += "; forms " + ", ".join(f"CPU{c}:{f}" for c, f in sorted(a["forms"].items()))
        if a["sender"] is not None:
            s += f", sent from CPU {a['sender']}"
        return s
    if exp.kind == "console":
        return (f"/{a['present']}/ present" if a["present"] else f"/{a['absent']}/ absent") + \
            (f" in step '{a['step']}'" if a["step"] else "") + \
            (f" on lines attributed to CPU {a['cpu']}" if a["cpu"] is not None else "")
    if exp.kind == "exit_status":
        return f"step '{a['step']}' exits {a['status']}"
    if exp.kind == "kdb":
        parts = []
        if a["available"] is not None:
            parts.append(f"'Available cpus: {a['available']}'")
        if a["states"]:
            parts.append("states " + ", ".join(f"CPU{c}:{s}" for c, s in sorted(a["states"].items())))
        if a["go_refused"] is not None:
            parts.append("go refused once" if a["go_refused"] else "go accepted at once")
        if a["btc"]:
            parts.append("btc traces every online CPU")
        return f"kdb in step '{a['step']}': " + "; ".join(parts)
    if exp.kind == "report":
        where = f" in step '{a['step']}'" if a["step"] else ""
        if a["type"] == "none":
            return "no kernel report" + where
        return f"a {a['type']} report" + (f" on CPU {a['cpu']}" if a["cpu"] is not None else "") + where
    if exp.kind == "vcpu":
        return (f"probe '{a['probe']}': vCPU(s) {cpulist.format(a['cpus'])} in "
                f"{' or '.join(a['where'])} in every sample")
    if exp.kind == "event":
        return (f"QMP event {a['name']} " + ("seen" if a["present"] else "not seen") +
                (f" during step '{a['step']}'" if a["step"] else ""))
    if exp.kind == "model":
        return "everything the reference model predicts for these steps holds"
    if exp.kind == "latency":
        bounds = [f"<= {a['max_ms']:g} ms" if a["max_ms"] is not None else "",
                  f">= {a['min_ms']:g} ms" if a["min_ms"] is not None else ""]
        count = f" over {a['count']} steps" if a["count"] else ""
        return f"p{a['percentile']:g} of steps '{a['steps']}*' {' and '.join(b for b in bounds if b)}{count}"
    return exp.kind


def evaluate(exp: Expectation, obs: Observations) -> CheckResult:
    fn = {"counter": _counter, "backtrace": _backtrace, "console": _console,
          "exit_status": _exit_status, "kdb": _kdb, "report": _report,
          "latency": _latency, "vcpu": _vcpu, "event": _event}[exp.kind]
    verdict, observed, step = fn(exp.args, obs)
    return CheckResult(exp.name, verdict, expected_of(exp), observed, step)


def _counter(a: dict, obs: Observations) -> tuple[str, str, str | None]:
    first, second = a["between"]
    if first not in obs.snapshots or second not in obs.snapshots:
        return ERROR, f"snapshot '{first if first not in obs.snapshots else second}' was not taken", None
    before, after = obs.snapshots[first], obs.snapshots[second]
    broken = [lbl for lbl, snap in ((first, before), (second, after)) if snap.corrupted]
    if broken:
        return FAIL, (f"snapshot(s) {', '.join(broken)} could not be read cleanly (corrupted "
                      "/proc/interrupts output): no count from them is trusted"), None
    row = a["row"]
    d = delta(before, after, row)
    if d is None:
        missing = [lbl for lbl, s in ((first, before), (second, after)) if s.row(row) is None]
        return FAIL, (f"no '{row}' row in /proc/interrupts at snapshot(s) {', '.join(missing)}; "
                      f"IPI rows present: {', '.join(after.ipi_names()) or 'none'}"), None
    # 'others' means every CPU online at both snapshots (as the run brought
    # them up and down), not whichever columns happened to parse.
    on_a, on_b = obs.online_at(first), obs.online_at(second)
    cpus = sorted(set(on_a) & set(on_b)) if on_a is not None and on_b is not None else sorted(d)
    problems = []
    for key, op, text in (("delta", lambda x, y: x == y, "="), ("at_least", lambda x, y: x >= y, ">="),
                          ("at_most", lambda x, y: x <= y, "<=")):
        if a[key] is None:
            continue
        for cpu, want in sorted(_per_cpu(a[key], cpus).items()):
            if cpu not in d:
                problems.append(f"CPU {cpu} is online but has no column")
            elif not op(d[cpu], want):
                problems.append(f"CPU {cpu}: {d[cpu]:+d}, want {text} {want}")
    observed = "deltas " + ", ".join(f"CPU{c}:{d[c]:+d}" for c in sorted(d))
    if problems:
        return FAIL, observed + " (" + "; ".join(problems) + ")", None
    return PASS, observed, None


def _backtrace(a: dict, obs: Observations) -> tuple[str, str, str | None]:
    step = a["step"]
    rec = obs.steps.get(step)
    if rec is None:
        return ERROR, f"step '{step}' did not run", step
    report = obs.backtraces(step)
    forms = report.forms()
    observed = "forms " + (", ".join(f"CPU{c}:{f}" for c, f in forms.items()) or "none")
    if report.sender is not None:
        observed += f"; sent from CPU {report.sender} to {cpulist.format(report.targets or [])}"
    problems = []
    if a["accounted"] == "online":
        for cpu in rec.online:
            form = forms.get(cpu)
            if form not in (backtrace.FULL, backtrace.IDLE):
                problems.append(f"CPU {cpu}: " + (f"{form} form, not an IPI backtrace" if form
                                                  else "no backtrace and no 'skipped: idling' line"))
        for cpu in forms:
            if cpu not in rec.online:
                problems.append(f"CPU {cpu} is offline but printed a backtrace")
    for cpu, want in sorted((a["forms"] or {}).items()):
        got = forms.get(cpu, "none")
        if got != want:
            problems.append(f"CPU {cpu}: {got} form, want {want}")
    if a["sender"] is not None and report.sender != a["sender"]:
        problems.append(f"no 'Sending NMI from CPU {a['sender']}' line")
    if problems:
        return FAIL, observed + " (" + "; ".join(problems) + ")", step
    return PASS, observed, step


def _console(a: dict, obs: Observations) -> tuple[str, str, str | None]:
    text = obs.step_text(a["step"]) if a["step"] else obs.console
    if a["cpu"] is not None:
        # Only lines the kernel attributes to that CPU: CONFIG_PRINTK_CALLER's
        # [C<n>] prefix (interrupt context, e.g. a backtrace IPI handler).
        text = "\n".join(ln.text for ln in console_lines.split(text) if ln.caller_cpu == a["cpu"])
    pattern = a["present"] or a["absent"]
    m = re.search(pattern, text, re.MULTILINE)
    found = f"found {m.group(0)!r}" if m else "not found"
    ok = bool(m) == bool(a["present"])
    return (PASS if ok else FAIL), found, a["step"]


def _exit_status(a: dict, obs: Observations) -> tuple[str, str, str | None]:
    rec = obs.steps.get(a["step"])
    if rec is None or rec.status is None:
        return ERROR, f"step '{a['step']}' has no exit status", a["step"]
    return (PASS if rec.status == a["status"] else FAIL), f"exit status {rec.status}", a["step"]


def _kdb(a: dict, obs: Observations) -> tuple[str, str, str | None]:
    step = a["step"]
    rec = obs.steps.get(step)
    if rec is None:
        return ERROR, f"step '{step}' did not run", step
    parsed = obs.kdb_output(step)
    session = parsed.sessions[-1] if parsed.sessions else None
    status = session.status if session else None
    listed = status.listed if status else None
    observed = [f"'Available cpus: {listed}'" if listed is not None else "no 'Available cpus' line",
                "states " + ", ".join(f"CPU{c}:{s}" for c, s in sorted(parsed.states.items())),
                "go refused once" if parsed.go_refused else "go accepted at once"]
    problems = []
    if a["available"] is not None and listed != a["available"]:
        problems.append(f"available {listed!r} != {a['available']!r}")
    for cpu, state in sorted((a["states"] or {}).items()):
        got = parsed.states.get(cpu)
        # An idle CPU answered the round-up too: kdb only marks it "(-)".
        if got != state and not (state == "responding" and got == "idle"):
            problems.append(f"CPU {cpu} is {parsed.states.get(cpu, 'absent')}, want {state}")
    if a["go_refused"] is not None and parsed.go_refused != a["go_refused"]:
        problems.append("go " + ("was not refused" if a["go_refused"] else "was refused"))
    if a["btc"]:
        traced = sorted(session.btc()) if session else []
        observed.append(f"btc traced CPUs {cpulist.format(traced) or 'none'}")
        if traced != rec.online:
            problems.append(f"btc traced {cpulist.format(traced) or 'none'}, online {cpulist.format(rec.online)}")
    text = "; ".join(observed)
    return (FAIL, f"{text} ({'; '.join(problems)})", step) if problems else (PASS, text, step)


def _report(a: dict, obs: Observations) -> tuple[str, str, str | None]:
    found = reports.parse(obs.step_text(a["step"])) if a["step"] else obs.kernel_reports()[1]
    summary = "; ".join(f"{r.type} on CPU {r.cpu}: {r.title}" for r in found) or "no reports"
    if a["type"] == "none":
        return (PASS if not found else FAIL), summary, a["step"]
    hits = [r for r in found if r.type == a["type"] and (a["cpu"] is None or r.cpu == a["cpu"])]
    return (PASS if hits else FAIL), summary, a["step"]


def _latency(a: dict, obs: Observations) -> tuple[str, str, str | None]:
    values = sorted(float(rec.detail.get("latency_ms", rec.seconds * 1000))
                    for name, rec in obs.steps.items() if name.startswith(a["steps"]))
    if not values:
        return ERROR, f"no step named '{a['steps']}*' ran", None
    rank = max(0, min(len(values) - 1, int(round(a["percentile"] / 100 * len(values) + 0.5)) - 1))
    p = values[rank]
    observed = (f"p{a['percentile']:g} = {p:.0f} ms over {len(values)} steps "
                f"(min {values[0]:.0f}, median {values[len(values) // 2]:.0f}, max {values[-1]:.0f})")
    problems = []
    if a["max_ms"] is not None and p > a["max_ms"]:
        problems.append(f"above {a['max_ms']:g} ms")
    if a["min_ms"] is not None and p < a["min_ms"]:
        problems.append(f"below {a['min_ms']:g} ms")
    if a["count"] is not None and len(values) != a["count"]:
        problems.append(f"{len(values)} steps ran, want {a['count']}")
    return (FAIL, observed + " (" + "; ".join(problems) + ")", None) if problems else (PASS, observed, None)


def _vcpu(a: dict, obs: Observations) -> tuple[str, str, str | None]:
    probe = obs.probes.get(a["probe"])
    if probe is None:
        return ERROR, f"probe '{a['probe']}' was not taken", None
    seen = probe.locations()
    problems = []
    for cpu in a["cpus"]:
        locs = seen.get(cpu)
        if locs is None:
            problems.append(f"QEMU reported no vCPU {cpu}")
        elif bad := [loc for loc in locs if loc not in a["where"]]:
            sample = next(s for rnd in probe.samples for s in rnd if s.cpu == cpu and s.location in bad)
            problems.append(f"CPU {cpu} in {bad[0]} (pc {sample.pc:#x} {sample.pc_symbol or '?'}, "
                            f"ra {sample.ra_symbol or '?'})")
    observed = "; ".join(f"CPU{c}: {'/'.join(sorted(set(v)))}" for c, v in sorted(seen.items()))
    return (FAIL, f"{observed} ({'; '.join(problems)})", None) if problems else (PASS, observed, None)


def _event(a: dict, obs: Observations) -> tuple[str, str, str | None]:
    if a["step"]:
        rec = obs.steps.get(a["step"])
        if rec is None:
            return ERROR, f"step '{a['step']}' did not run", a["step"]
        names = rec.detail.get("qmp_events", [])
    else:
        names = [e["event"] for e in obs.qmp_events]
    seen = a["name"] in names
    observed = "events: " + (", ".join(names[-20:]) or "none")
    return (PASS if seen == a["present"] else FAIL), observed, a["step"]
