"""The model's predictions, step by step, as text (rvharness explain)."""
from __future__ import annotations

from typing import Any, Iterable

from harness.model.engine import predict
from harness.model.features import EXACT_ROWS, UNTRIGGERABLE, Features
from harness.model.prediction import MUST, Prediction
from harness.parsers import cpulist

_FORM_TEXT = {
    "full": "full backtrace ('NMI backtrace for cpu N' + trace)",
    "idle": "'NMI backtrace for cpu N skipped: idling at ...'",
    "fallback": "'CPUn:' + trace (function-call fallback)",
    "fallback-idle": "'CPUn: backtrace skipped as idling'",
    None: "nothing",
}


def _describe_step(p: Prediction) -> str:
    a = p.args
    k = p.kind
    if k == "snapshot":
        return f"snapshot '{a.get('label')}' (cat /proc/interrupts)"
    if k == "shell":
        return f"shell: {a.get('command')}"
    if k == "sleep":
        return f"sleep {a.get('seconds')} s"
    if k == "sysrq":
        via = "serial BREAK" if a.get("via") == "break" else "/proc/sysrq-trigger"
        where = f" from CPU {a['cpu']}" if a.get("cpu") is not None and a.get("via") != "break" else ""
        return f"sysrq '{a.get('key')}'{where} via {via}"
    if k == "hotplug":
        return f"hotplug: CPU {a.get('cpu')} {'online' if a.get('online') else 'offline'}"
    if k == "kdb":
        cmds = ", ".join(a.get("commands") or []) or "no commands"
        where = f"from CPU {a['cpu']}" if a.get("cpu") is not None else "via serial BREAK"
        return f"kdb {where}: {cmds}; go" + (" (twice if refused)" if a.get("go_twice") else "")
    if k == "lkdtm":
        return f"lkdtm {a.get('crash')} on CPU {a.get('cpu')}"
    if k == "load":
        secs = a.get("seconds")
        return f"busy loop on CPU {a.get('cpu')}" + (f" for {secs} s" if secs else " until the end")
    return f"{k} {a}"


def _alts(values: Iterable[Any], fmt=str) -> str:
    vals = sorted(values, key=lambda v: (v is None, str(v)))
    return " or ".join(fmt(v) for v in vals)


def _counters(p: Prediction) -> list[str]:
    out = []
    comparable = set(p.comparable_cpus)
    for row in sorted(p.counters, key=lambda r: (r not in EXACT_ROWS, r)):
        cells = [(cpu, r) for cpu, r in sorted(p.counters[row].items())
                 if cpu in comparable and not r.vacuous]
        if not cells:
            continue
        if all(r.is_exact and r.lo == 0 for _, r in cells) and p.backtrace is None and p.kdb is None:
            continue
        kind = "exact" if row in EXACT_ROWS else "bounds"
        out.append(f"{row} ({kind}): " + ", ".join(f"cpu{c} {r}" for c, r in cells))
    return out


def explain_predictions(predictions: list[Prediction], features: Features, cpus: int) -> str:
    lines = [f"Model: {cpus} CPUs; {features.describe()}."]
    rev = features.reverted()
    if rev:
        lines.append(f"Seed commits missing from this kernel: {', '.join(rev)}.")
    for row, why in UNTRIGGERABLE.items():
        if row in features.ipi_rows():
            lines.append(f"'{row}' {why}; the model claims it stays 0.")
    for p in predictions:
        lines.append("")
        lines.append(f"[{p.index + 1}] {p.name}: {_describe_step(p)}")
        lines.append(f"    time {p.start} -> {p.end}; outcome: {_alts(p.outcome)}")
        if p.outcome == {"not-reached"}:
            for n in p.notes:
                lines.append(f"    {n}")
            continue
        states = ", ".join(f"{c} {s}" for c, s in sorted(p.activities.items()))
        lines.append(f"    CPUs at start: {states}")
        if p.snapshot is not None:
            s = p.snapshot
            lines.append(f"    /proc/interrupts columns: {' '.join(f'CPU{c}' for c in s.columns)}")
            if s.absent_rows:
                lines.append(f"    rows absent: {', '.join(s.absent_rows)}")
        if p.backtrace is not None:
            b = p.backtrace
            mech = ("backtrace IPI (lib/nmi_backtrace.c)" if b.mechanism == "ipi"
                    else "fallback: workqueue + smp_call_function(showacpu)")
            lines.append(f"    mechanism: {mech}; sender CPU {_alts(b.sender)}")
            for s, t in sorted(b.targets.items()):
                if b.mechanism == "ipi" and t:
                    lines.append(f"    console: 'Sending NMI from CPU {s} to CPUs {cpulist.format(t)}:'")
            for cpu, forms in sorted(b.forms.items()):
                lines.append(f"    cpu{cpu}: {_alts(forms, lambda f: _FORM_TEXT.get(f, str(f)))}")
            wait = {True: "yes (a target cannot answer: ~10 s)", False: "no"}
            lines.append(f"    10 s wait: {_alts(b.wait, lambda w: wait[w])}")
        if p.kdb is not None:
            k = p.kdb
            lines.append(f"    kdb prompt: {_alts(k.cpu, lambda c: f'[{c}]kdb> ')}")
            if k.available:
                shown = sorted(k.available)
                more = f" (+{len(shown) - 8} more)" if len(shown) > 8 else ""
                lines.append("    Available cpus: " + " | ".join(f"'{s}'" for s in shown[:8]) + more
                             + ("" if k.printed else "  (not printed: no 'cpu'/'btc' command)"))
            unr = _alts(k.unresponsive, lambda u: cpulist.format(list(u)) or "none")
            lines.append(f"    did not round up: {unr}; round-up timeout: {_alts(k.roundup_timeout)}")
            lines.append(f"    first go refused: {_alts(k.go_refused)}; leaves kdb: {_alts(k.resumed)}")
            for ln in k.lines:
                lines.append(f"    kdb prints: {ln}")
        if p.hotplug is not None:
            h = p.hotplug
            what = "changes state" if h.change else "no change"
            extra = f"; latency class {h.latency_class}" if h.latency_class else ""
            if h.latency_ms_max is not None:
                extra += f" (<= {h.latency_ms_max} ms)"
            reason = f" ({h.reason})" if h.reason else ""
            lines.append(f"    exit status {h.status}; {what}{reason}{extra}")
        for row in _counters(p):
            lines.append(f"    counters: {row}")
        for r in p.console_lines:
            lines.append(f"    console {'must' if r.when == MUST else 'may'} show: /{r.pattern}/"
                         + (f"  ({r.why})" if r.why else ""))
        for n in p.notes:
            lines.append(f"    note: {n}")
        if p.online_after != p.online_before:
            lines.append(f"    online after: {cpulist.format(p.online_after)}")
    return "\n".join(lines) + "\n"


def explain(steps: Iterable[Any], features: Features | None = None, cpus: int = 4) -> str:
    """Readable predictions for a scenario's steps."""
    features = features or Features.riscv_6_12()
    run = predict(steps, features, cpus)
    return explain_predictions(run.predictions, features, cpus)
