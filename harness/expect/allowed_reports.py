"""The project-wide allow-list of kernel reports: reports that fail no run
when nothing else names them, each with why and where the evidence is
(issue 19). Everything else a run's console holds that no expectation names
and the model does not predict fails the check "no unexpected kernel
report". A scenario names the reports it expects itself (`report:`); this
list is for reports no scenario can own, and stays short: an entry needs a
cause found in the kernel's or QEMU's source, not a count of how often it
appears."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AllowedReport:
    type: str        # reports.Report.type
    title: str       # reports.Report.title, exactly
    reason: str      # one line: whose fault, and why it is not the kernel under test's
    evidence: str    # where it was found: source lines, the doc section with the measurement


ALLOWED = (
    AllowedReport(
        "cpu-hotplug", "CPU may not have stopped",
        "a race in the kernel's own check, not a stuck hart: arch_cpu_idle_dead() reports the CPU dead "
        "(cpuhp_ap_report_dead) before it asks OpenSBI to stop the hart (sbi_hsm_hart_stop), and "
        "arch_cpuhp_cleanup_dead_cpu() reads the HSM state once without waiting, so it can find the hart "
        "still STARTED (0) or STOP_PENDING (3); a descheduled vCPU thread under TCG widens the window",
        "linux-source-6.12 arch/riscv/kernel/cpu-hotplug.c arch_cpuhp_cleanup_dead_cpu/arch_cpu_idle_dead, "
        "arch/riscv/kernel/cpu_ops_sbi.c sbi_cpu_is_stopped ('HARTn isn't stopped; status 3'); "
        "docs/scenarios.md, Reports nobody expected"),
    AllowedReport(
        "cpu-hotplug", "CPU failed to come online",
        "judged by its own check, 'all CPUs came online at boot', after the runner's boot retry "
        "(a secondary vCPU missing the kernel's 1 s wait: 1.5% of boots at -j 2)",
        "arch/riscv/kernel/smpboot.c __cpu_up; docs/measurements.md, bringup"),
)


def allowed(rtype: str, title: str) -> AllowedReport | None:
    """The entry that allows a report of this type and title, if any."""
    return next((a for a in ALLOWED if a.type == rtype and a.title == title), None)
