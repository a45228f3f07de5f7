"""Every expectation kind, by the name scenarios use for it, in the order
error messages list them. The scenario loader validates and the checks
evaluate through this table."""
from __future__ import annotations

from harness.expect import (
    backtrace_check,
    console_check,
    counter_check,
    event_check,
    exit_status_check,
    kdb_check,
    latency_check,
    model_check,
    report_check,
    vcpu_check,
)
from harness.expect.kind import ExpectationKind

EXPECTATION_KINDS: dict[str, ExpectationKind] = {m.KIND.kind: m.KIND for m in (
    counter_check, backtrace_check, console_check, exit_status_check, kdb_check,
    report_check, latency_check, vcpu_check, event_check, model_check)}
