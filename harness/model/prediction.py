"""What the model predicts for one step, and its atomic claims.

Every Prediction lists its claims as (claim_id, description, expected_value)
triples (Prediction.claims()); expected values are plain JSON as described
in harness/model/expect.py. claim_details() gives the same claims with the
basis of each: "source" (derived from the kernel source), "measured"
(docs/measurements.md) or "both"."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from harness.model.expect import Range, one_of
from harness.model.state import Span

# Step outcomes.
OK = "ok"                       # the step completes
REFUSED = "refused"             # the kernel or taskset refuses; nonzero exit status, nothing changes
NO_EFFECT = "no-effect"         # accepted but nothing happens (e.g. pinned to a CPU that never schedules)
HANG = "hang"                   # never completes: the console shell is blocked; the step times out
KDB_HELD = "kdb-held"           # the machine is left in kdb
PANIC = "panic"                 # the kernel panicked
OOPS = "oops"                   # an oops killed the writer; the machine goes on
UNSUPPORTED = "unsupported"     # the kernel lacks what the step needs
NOT_REACHED = "not-reached"     # an earlier step left the machine unable to run it
UNMODELLED = "unmodelled"       # the model does not know this step's effect
ABORTED = "aborted"             # the machine went away (a reset with -no-reboot ends QEMU)

MUST = "must"
MAY = "may"
NEVER = "never"                 # must not appear (e.g. "SMP: failed to stop" when every CPU can stop)


@dataclass(frozen=True)
class Claim:
    id: str
    description: str
    expected: Any
    basis: str = "source"

    def as_tuple(self) -> tuple[str, str, Any]:
        return (self.id, self.description, self.expected)


@dataclass
class PredictedLine:
    """A console line the kernel prints: pattern is a Python regex to search
    for; when is MUST (appears by the end of the step), MAY, or NEVER (must
    not appear from the step's start on)."""
    key: str
    pattern: str
    when: str = MUST
    why: str = ""
    basis: str = "source"

    def to_json(self) -> dict:
        return {"key": self.key, "pattern": self.pattern, "when": self.when, "why": self.why,
                "basis": self.basis}


def _forms_json(values: Iterable[Any]) -> Any:
    return one_of(list(values))


def _sorted(values: Iterable[Any]) -> list[Any]:
    return sorted(values, key=lambda v: (v is None, str(v)))


@dataclass
class BacktracePrediction:
    """sysrq-l: with the backtrace IPI (lib/nmi_backtrace.c) or the
    function-call fallback (drivers/tty/sysrq.c)."""
    mechanism: str                                   # "ipi" or "fallback"
    sender: set[int]                                 # candidates (one when known)
    targets: dict[int, list[int]]                    # sender -> CPUs on the "Sending NMI" line
    forms: dict[int, set[str | None]]                # cpu -> possible forms (None = prints nothing)
    wait: set[bool]                                  # the 10 s wait for a CPU that cannot answer
    swallowed: bool = False                          # another backtrace may be in progress: may print nothing
    blocked_at: int | None = None                    # fallback: kworker blocks on a locked csd of this CPU

    def to_json(self) -> dict:
        return {"mechanism": self.mechanism, "sender": sorted(self.sender),
                "targets": {str(k): v for k, v in sorted(self.targets.items())},
                "forms": {str(c): _sorted(f) for c, f in sorted(self.forms.items())},
                "wait": sorted(self.wait), "swallowed": self.swallowed,
                "blocked_at": self.blocked_at}


@dataclass
class KdbPrediction:
    cpu: set[int]                                    # the CPU kdb is entered on (candidates)
    via: str
    available: set[str]                              # possible "Available cpus" strings
    printed: bool                                    # a command prints the Available cpus line
    unresponsive: set[tuple[int, ...]]               # possible sets of CPUs that did not round up
    roundup_timeout: set[bool]
    go_refused: set[bool]
    resumed: set[bool]
    lines: list[str] = field(default_factory=list)   # other kdb output the commands print
    current: set[int] = field(default_factory=set)   # CPU kdb is on when "go" is typed

    def to_json(self) -> dict:
        return {"cpu": sorted(self.cpu), "via": self.via, "available": sorted(self.available),
                "printed": self.printed,
                "unresponsive": sorted(list(u) for u in self.unresponsive),
                "roundup_timeout": sorted(self.roundup_timeout),
                "go_refused": sorted(self.go_refused), "resumed": sorted(self.resumed),
                "lines": list(self.lines), "current": sorted(self.current)}


@dataclass
class HotplugPrediction:
    cpu: int
    online: bool
    change: bool                                     # the CPU's state actually changes
    status: Any                                      # expected exit status (expect.py form)
    latency_class: str | None = None                 # "fast", "may-stall", or None (no claim)
    latency_ms_max: int | None = None
    reason: str = ""

    def to_json(self) -> dict:
        return {"cpu": self.cpu, "online": self.online, "change": self.change,
                "status": self.status, "latency_class": self.latency_class,
                "latency_ms_max": self.latency_ms_max, "reason": self.reason}


@dataclass
class SnapshotPrediction:
    label: str
    columns: list[int]                               # CPU columns of /proc/interrupts
    rows: list[str]                                  # IPI rows present
    absent_rows: list[str]

    def to_json(self) -> dict:
        return {"label": self.label, "columns": self.columns, "rows": self.rows,
                "absent_rows": self.absent_rows}


@dataclass
class Prediction:
    index: int
    name: str
    kind: str
    args: dict[str, Any]
    start: Span
    end: Span
    online_before: list[int]
    online_after: list[int]
    activities: dict[int, str]                       # what each CPU is doing when the step starts
    outcome: set[str] = field(default_factory=lambda: {OK})
    status: Any = None                               # expected exit status, when the model knows it
    counters: dict[str, dict[int, Range]] = field(default_factory=dict)
    backtrace: BacktracePrediction | None = None
    kdb: KdbPrediction | None = None
    hotplug: HotplugPrediction | None = None
    snapshot: SnapshotPrediction | None = None
    console_lines: list[PredictedLine] = field(default_factory=list)
    # where each vCPU executes while the step's vcpus probe is taken (harness.vcpus locations)
    vcpus: dict[int, set[str]] | None = None
    # other single claims: id suffix -> (description, expected value)
    facts: dict[str, tuple[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    basis: dict[str, str] = field(default_factory=dict)   # claim-id suffix -> basis override

    # ------------------------------------------------------------ helpers
    def add_counter(self, row: str, cpu: int, r: Range) -> None:
        rows = self.counters.setdefault(row, {})
        rows[cpu] = rows[cpu] + r if cpu in rows else r

    def expect_console(self, key: str, pattern: str, when: str = MUST, why: str = "",
               basis: str = "source") -> None:
        for r in self.console_lines:
            if r.key == key:
                if when == MUST:
                    r.when = MUST
                return
        self.console_lines.append(PredictedLine(key, pattern, when, why, basis))

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    @property
    def comparable_cpus(self) -> list[int]:
        """CPUs with a /proc/interrupts column both before and after the step."""
        return sorted(set(self.online_before) & set(self.online_after))

    # ------------------------------------------------------------ claims
    def claim_details(self) -> list[Claim]:
        n = self.name
        out: list[Claim] = []

        def add(suffix: str, desc: str, expected: Any, basis: str = "source") -> None:
            out.append(Claim(f"{n}:{suffix}", desc, expected, self.basis.get(suffix, basis)))

        add("outcome", "how the step ends", one_of(sorted(self.outcome)))
        if self.status is not None:
            add("status", "exit status of the step's console command", self.status)
        if self.snapshot is not None:
            s = self.snapshot
            add("snapshot:columns", "CPU columns of /proc/interrupts (the online CPUs)", s.columns, "both")
            for row in s.rows:
                add(f"snapshot:row:{row}", f"/proc/interrupts has the IPI row '{row}'", True, "both")
            for row in s.absent_rows:
                add(f"snapshot:row:{row}", f"/proc/interrupts has the IPI row '{row}'", False, "both")
        comparable = set(self.comparable_cpus)
        for row in sorted(self.counters):
            for cpu, r in sorted(self.counters[row].items()):
                if cpu not in comparable or r.vacuous:
                    continue
                kind = "exact" if r.is_exact else "bound"
                add(f"counter:{row}:cpu{cpu}",
                    f"change of '{row}' on CPU {cpu} caused during this step ({kind})",
                    r.expected())
        if self.backtrace is not None:
            b = self.backtrace
            add("backtrace:mechanism", "backtrace IPI ('ipi') or workqueue + function-call fallback",
                b.mechanism, "both")
            add("backtrace:sender", "CPU that runs the sysrq-l handler", one_of(sorted(b.sender)), "both")
            if b.mechanism == "ipi":
                lists = {tuple(v) for v in b.targets.values()}
                add("backtrace:targets", "CPUs on the 'Sending NMI from CPU s to CPUs ...:' line",
                    one_of([list(t) for t in sorted(lists)]), "both")
            for cpu, forms in sorted(b.forms.items()):
                add(f"backtrace:form:cpu{cpu}",
                    f"what CPU {cpu} prints (harness.parsers.backtrace form; null = nothing)",
                    _forms_json(_sorted(forms)), "both")
            add("backtrace:wait", "the handler waits 10 s for a CPU that cannot answer",
                one_of(sorted(b.wait)), "both")
        if self.kdb is not None:
            k = self.kdb
            add("kdb:prompt", "the kdb prompt", one_of(f"[{c}]kdb> " for c in sorted(k.cpu)), "both")
            if k.printed and k.available and len(k.available) <= 256:
                add("kdb:available", "the text after 'Available cpus: '", one_of(sorted(k.available)), "both")
            add("kdb:unresponsive", "CPUs that did not answer the round-up (shown (D))",
                one_of([list(u) for u in sorted(k.unresponsive)]), "both")
            add("kdb:roundup_timeout", "'Timed out waiting for secondary CPUs.' after ~1 s",
                one_of(sorted(k.roundup_timeout)))
            add("kdb:go_refused", "the first 'go' answers 'type go a second time ...'",
                one_of(sorted(k.go_refused)), "both")
            add("kdb:resumed", "the machine leaves kdb at the end of the step", one_of(sorted(k.resumed)))
        if self.hotplug is not None:
            h = self.hotplug
            add("hotplug:status", f"exit status of 'echo {int(h.online)} > .../cpu{h.cpu}/online'", h.status)
            add("hotplug:online_after", "online CPUs after the step", self.online_after)
            if h.latency_class is not None:
                add("hotplug:latency_class", "latency class of the online write", h.latency_class, "measured")
            if h.latency_ms_max is not None:
                add("hotplug:latency_ms", "in-guest duration of the online write (ms)",
                    {"at_most": h.latency_ms_max}, "measured")
        if self.vcpus is not None:
            for cpu, locs in sorted(self.vcpus.items()):
                add(f"vcpus:cpu{cpu}", f"where CPU {cpu} executes in every sample of the vcpus probe "
                    "(QEMU's registers, symbolised)", one_of(sorted(locs)), "both")
        for suffix, (desc, expected) in sorted(self.facts.items()):
            add(suffix, desc, expected)
        for r in self.console_lines:
            if r.when == MUST:
                out.append(Claim(f"{n}:report:{r.key}",
                                 f"console shows /{r.pattern}/ by the end of this step", True, r.basis))
        return out

    def claims(self) -> list[tuple[str, str, Any]]:
        """(claim_id, description, expected_value) for each atomic claim."""
        return [c.as_tuple() for c in self.claim_details()]

    def to_json(self) -> dict:
        return {
            "index": self.index, "name": self.name, "kind": self.kind, "args": _jsonable(self.args),
            "start": self.start.to_json(), "end": self.end.to_json(),
            "online_before": self.online_before, "online_after": self.online_after,
            "activities": {str(k): v for k, v in sorted(self.activities.items())},
            "outcome": sorted(self.outcome), "status": self.status,
            "counters": {row: {str(c): r.expected() for c, r in sorted(cpus.items())}
                         for row, cpus in sorted(self.counters.items())},
            "backtrace": self.backtrace.to_json() if self.backtrace else None,
            "kdb": self.kdb.to_json() if self.kdb else None,
            "hotplug": self.hotplug.to_json() if self.hotplug else None,
            "snapshot": self.snapshot.to_json() if self.snapshot else None,
            "vcpus": ({str(c): sorted(v) for c, v in sorted(self.vcpus.items())}
                      if self.vcpus is not None else None),
            "facts": {k: v[1] for k, v in sorted(self.facts.items())},
            "console_lines": [r.to_json() for r in self.console_lines],
            "notes": list(self.notes),
            "claims": [list(c) for c in self.claims()],
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "kind") and hasattr(value, "args"):
        return {"kind": value.kind, "name": getattr(value, "name", None), "args": _jsonable(value.args)}
    return str(value)
