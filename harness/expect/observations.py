"""What a run observed: step records, /proc/interrupts snapshots, the
console transcript. Written to observations.json for reviewers."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.guest.vcpu_probe import Probe
from harness.parsers import backtrace, klog, observe, reports
from harness.parsers import kdb_session as kdb
from harness.parsers.interrupts import Interrupts
from harness.parsers.symbolize import SystemMap


@dataclass
class StepRecord:
    name: str
    kind: str
    start: int                  # console transcript offsets
    end: int
    seconds: float
    online: list[int]           # CPUs online when the step ran
    status: int | None = None
    output: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Observations:
    console: str = ""
    steps: dict[str, StepRecord] = field(default_factory=dict)
    snapshots: dict[str, Interrupts] = field(default_factory=dict)
    boot_seconds: float | None = None
    cpus: int | None = None
    boot_ipi_rows: list[str] = field(default_factory=list)
    system_map: Path | None = None
    kernel_release: str = ""
    probes: dict[str, Probe] = field(default_factory=dict)
    harts: dict[int, int] = field(default_factory=dict)     # Linux CPU -> hart id, when a step needed it
    qmp_events: list[dict[str, Any]] = field(default_factory=list)
    boot_retries: list[dict[str, Any]] = field(default_factory=list)   # boots given up, see runner._booted
    # [start, end] host wall clock (Unix time) of each QEMU process of the
    # run (two when the boot was retried): when it shared the host, and with whom.
    qemu_spans: list[list[float]] = field(default_factory=list)
    # The signal QEMU died of mid-run when the harness did not send it
    # (Machine.died_of_signal): infrastructure, see runner.run_scenario.
    qemu_died_of_signal: int | None = None
    # How the run ended early, when it did: {"step", "how", "detail"}; "how"
    # is one of crosscheck's outcome classes (hung, crashed, kdb-held, aborted).
    ended: dict[str, Any] | None = None

    # Each step's console output is parsed once, here; the checks, the model
    # comparison and observations.json all read these.
    _parsed: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)

    def step_text(self, name: str) -> str:
        rec = self.steps[name]
        return self.console[rec.start:rec.end]

    def online_at(self, label: str) -> list[int] | None:
        """CPUs online (as the harness brought them up and down) when the
        snapshot `label` was taken; None if no such snapshot step ran."""
        for rec in self.steps.values():
            if rec.kind == "snapshot" and rec.detail.get("label") == label:
                return rec.online
        return None

    def backtraces(self, name: str) -> backtrace.BacktraceReport:
        """The backtrace round in step `name`'s console output."""
        key = ("backtrace", name)
        if key not in self._parsed:
            self._parsed[key] = backtrace.parse(self.step_text(name))
        return self._parsed[key]

    def kdb_output(self, name: str) -> kdb.KdbReport:
        """The kdb sessions in step `name`'s console output."""
        key = ("kdb", name)
        if key not in self._parsed:
            self._parsed[key] = kdb.parse(self.step_text(name), self.cpus)
        return self._parsed[key]

    def kernel_reports(self) -> tuple[list[klog.Line], list[reports.Report]]:
        """The whole console's lines and the kernel reports in them, with
        guilty frames from the kernel's System.map: parsed once for the
        unexpected-report check, report expectations and observations.json."""
        key = ("reports", "")
        if key not in self._parsed:
            lines = klog.split(self.console)
            truncated = klog.cut_off(self.console, lines)
            self._parsed[key] = (lines, reports.parse(lines, SystemMap.load(self.system_map), truncated))
        return self._parsed[key]

    def to_json(self) -> dict[str, Any]:
        steps = {}
        for name, rec in self.steps.items():
            entry: dict[str, Any] = {
                "kind": rec.kind, "seconds": round(rec.seconds, 3), "online": rec.online,
                "status": rec.status, "console_span": [rec.start, rec.end], **rec.detail,
            }
            if rec.kind == "sysrq":
                entry["backtraces"] = self.backtraces(name).to_json()
            if rec.kind == "kdb":
                entry["kdb"] = self.kdb_output(name).to_json()
            if rec.output:
                entry["output"] = rec.output
            steps[name] = entry
        return {
            "boot_seconds": self.boot_seconds, "boot_retries": self.boot_retries, "ended": self.ended,
            "qemu_spans": self.qemu_spans, "qemu_died_of_signal": self.qemu_died_of_signal,
            "kernel_release": self.kernel_release,
            "cpus": self.cpus,
            "boot_ipi_rows": self.boot_ipi_rows,    # /proc/interrupts' IPI rows right after boot
            # Everything the parsers find in the whole console: backtrace
            # rounds, kdb sessions, kernel reports.
            "console": observe.observe(self.console, self.cpus, self.system_map,
                                       found=self.kernel_reports()[1]),
            "steps": steps,
            "snapshots": {label: snap.to_json() for label, snap in self.snapshots.items()},
            # Ground truth from outside the guest.
            "harts": {str(c): h for c, h in sorted(self.harts.items())},
            "vcpu_probes": {label: probe.to_json() for label, probe in self.probes.items()},
            "qmp_events": self.qmp_events,
        }
