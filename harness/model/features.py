"""What the modelled kernel can do: the seed commits present or reverted,
the detectors and debug options configured, and the architecture's NMI
capability. Frozen records; docs/model.md says where each comes from."""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Iterable, Mapping, Sequence

from harness.parsers.backtrace import FULL, IDLE

# /proc/interrupts IPI rows, in the order the kernel prints them.
# arch/riscv/kernel/smp.c ipi_names[] (enum ipi_message_type order).
RESCHED_ROW = "Rescheduling interrupts"
CALL_ROW = "Function call interrupts"
STOP_ROW = "CPU stop interrupts"
CRASH_STOP_ROW = "CPU stop (for crash dump) interrupts"
IRQ_WORK_ROW = "IRQ work interrupts"
TIMER_ROW = "Timer broadcast interrupts"
BACKTRACE_ROW = "CPU backtrace interrupts"
KGDB_ROW = "KGDB roundup interrupts"
STOP_NMI_ROW = "CPU stop NMIs"

RISCV_IPI_ROWS = (RESCHED_ROW, CALL_ROW, STOP_ROW, CRASH_STOP_ROW, IRQ_WORK_ROW, TIMER_ROW,
                  BACKTRACE_ROW, KGDB_ROW)
# arch/arm64/kernel/smp.c ipi_types[] (enum ipi_msg_type order).
ARM64_IPI_ROWS = (RESCHED_ROW, CALL_ROW, STOP_ROW, STOP_NMI_ROW, TIMER_ROW, IRQ_WORK_ROW,
                  BACKTRACE_ROW, KGDB_ROW)

# Rows that only the modelled actions move: the model predicts exact deltas.
# The stop rows move only on the way down (riscv: panic's smp_send_stop; the
# crash-dump stop needs CONFIG_KEXEC_CORE), after which no snapshot can be
# read; the timer broadcast row cannot move in this configuration (no timer
# stops in idle on QEMU virt, CONFIG_CPU_IDLE off). docs/ipi-types.md has the
# measurements: all three stayed 0 in every snapshot of every run.
EXACT_ROWS = (BACKTRACE_ROW, KGDB_ROW, STOP_ROW, CRASH_STOP_ROW, STOP_NMI_ROW, TIMER_ROW)
# IPI types the configuration cannot send, and why (explain and docs/model.md).
UNTRIGGERABLE = {
    CRASH_STOP_ROW: "cannot be triggered in this configuration: CONFIG_KEXEC_CORE is off, so riscv's "
                    "crash_smp_send_stop() is not built and panic uses smp_send_stop() (IPI_CPU_STOP)",
    TIMER_ROW: "cannot be triggered in this configuration: no per-CPU timer stops in idle (QEMU virt's "
               "timer has no riscv,timer-cannot-wake-cpu, CONFIG_CPU_IDLE is off), so no CPU enters "
               "tick broadcast mode",
}
# Rows the rest of the kernel moves too: the model predicts lower bounds.
NOISY_ROWS = (CALL_ROW, RESCHED_ROW, IRQ_WORK_ROW)

# IPI kinds an architecture may deliver as an NMI.
NMI_BACKTRACE = "backtrace"
NMI_KGDB_ROUNDUP = "kgdb_roundup"
NMI_STOP = "stop"
ROW_IPI = {BACKTRACE_ROW: NMI_BACKTRACE, KGDB_ROW: NMI_KGDB_ROUNDUP, STOP_NMI_ROW: NMI_STOP}

# The seed commits, for naming what a kernel lacks.
SEED_BACKTRACE = "f15c21a3de1b"
SEED_KGDB = "983f12149942"
SEED_SBI_IPI = "3908ba2e0b24"
# kernels/patches/without-csd-lock-diagnostics.patch: kernel/smp.c's
# csd_lock_wait() without the timeout diagnostics, whatever the config says.
NO_CSD_DIAGNOSTICS = "csd-lock-diagnostics"
# The arm64 seed, "arm64: smp: Add arch support for backtrace using
# pseudo-NMI" (kernels/arm64/patches/revert-pseudo-nmi-backtrace.patch):
# IPI_CPU_BACKTRACE and the mechanism that makes IPIs pseudo-NMIs.
SEED_ARM64_BACKTRACE = "pseudo-nmi-backtrace"


@dataclass(frozen=True)
class ArchProfile:
    """An architecture's IPI behaviour as far as the model needs it."""
    name: str
    ipi_rows: tuple[str, ...]
    nmi_ipis: frozenset[str]          # IPI kinds that reach a CPU with interrupts off
    idle_forms: frozenset[str]        # forms an idle CPU's backtrace-IPI answer may take
    uart_irq_cpu: int = 0             # the CPU the console UART interrupt is routed to at boot
    hardlockup_detector: str = "buddy"
    # QEMU's inject-nmi reaches the guest (riscv virt, QEMU 7.2: refused)
    nmi_injection: bool = False
    # where an offline CPU's vCPU executes: stopped through SBI HSM, in the
    # firmware (measured: PC 0x80009b04 in OpenSBI)
    offline_location: str = "firmware"
    # What the kernel prints when a CPU has gone offline ({n}: the CPU):
    # arch/riscv/kernel/cpu-hotplug.c "CPU%u: off"; arm64 only pr_debug()s
    # "CPU%u: shutdown", but arch/arm64/kernel/psci.c cpu_psci_cpu_kill()
    # prints "CPU%d killed (polled %d ms)" (pr_fmt "psci: ").
    offline_report: str = r"CPU{n}: off"
    # smp_send_stop()'s "SMP: failed to stop secondary CPUs %*pbl" names
    # cpu_online_mask on RISC-V, the sender included; arm64 names the online
    # mask without the sender (arch/*/kernel/smp.c in 6.12; measured: riscv64
    # "1,3", arm64 without pseudo-NMIs "3", panicking on CPU 1 with CPU 3 stuck).
    stop_failed_names_sender: bool = True

    def reaches_irqs_off(self, ipi: str) -> bool:
        return ipi in self.nmi_ipis


# RISC-V has no NMI for IPIs: an IPI is an ordinary supervisor software
# interrupt (arch/riscv/kernel/smp.c handle_IPI via the INTC); a CPU with
# interrupts disabled never takes it. PLIC routes ttyS0 to CPU 0 at boot
# (docs/measurements.md §uart-cpu; drivers/irqchip/irq-sifive-plic.c plic_set_affinity picks the
# first online CPU of the mask).
RISCV64 = ArchProfile("riscv64", RISCV_IPI_ROWS, frozenset(), frozenset({IDLE}))

# arm64 with irqchip.gicv3_pseudo_nmi=1: ipi_should_be_nmi() is true for
# IPI_CPU_STOP_NMI, IPI_CPU_BACKTRACE and IPI_KGDB_ROUNDUP
# (arch/arm64/kernel/smp.c). Idle CPUs answer the backtrace either way
# (docs/measurements.md §idle-forms: sometimes "skipped: idling", sometimes a full trace).
_ARM64_OFF = r"psci: CPU{n} killed \(polled \d+ ms\)"
ARM64_PSEUDO_NMI = ArchProfile("arm64-pseudo-nmi", ARM64_IPI_ROWS,
                               frozenset({NMI_BACKTRACE, NMI_KGDB_ROUNDUP, NMI_STOP}),
                               frozenset({IDLE, FULL}), offline_report=_ARM64_OFF,
                               stop_failed_names_sender=False)
# arm64 with pseudo-NMIs off behaves as RISC-V does for stuck CPUs (docs/measurements.md §arm64-pseudo-nmi).
ARM64 = ArchProfile("arm64", ARM64_IPI_ROWS, frozenset(), frozenset({IDLE, FULL}),
                    offline_report=_ARM64_OFF, stop_failed_names_sender=False)

ARCH_PROFILES = {p.name: p for p in (RISCV64, ARM64_PSEUDO_NMI, ARM64)}


def _on(config: Mapping[str, str], name: str) -> bool:
    return config.get(name, "n") in ("y", "m")


def _int(value: Any, default: int) -> int:
    try:
        return int(str(value).strip('"'), 0)
    except (TypeError, ValueError):
        return default


def _param(cmdline: Sequence[str], name: str) -> str | None:
    """Value of the last name=value in the kernel command line."""
    found = None
    for part in cmdline:
        if part.startswith(name + "="):
            found = part[len(name) + 1:]
        elif part == name:
            found = ""
    return found


# What a recipe may declare absent (`model: {without: [...]}`), with what
# each changes in the model. Commits may be given by a prefix of 7+ digits.
ABSENT_ON_PURPOSE = {
    SEED_BACKTRACE: "riscv: add IPI_CPU_BACKTRACE (arch_trigger_cpumask_backtrace by IPI)",
    SEED_KGDB: "riscv: add IPI_KGDB_ROUNDUP (kgdb_roundup_cpus by IPI)",
    SEED_SBI_IPI: "riscv: SBI IPI enabled at CPUHP_AP_IRQ_RISCV_SBI_IPI_STARTING",
    NO_CSD_DIAGNOSTICS: "kernel/smp.c csd_lock_wait() timeout diagnostics",
    SEED_ARM64_BACKTRACE: "arm64: IPI_CPU_BACKTRACE and pseudo-NMI IPIs (ipi_should_be_nmi)",
}


def resolve_without(names: Iterable[str]) -> list[str]:
    """The ABSENT_ON_PURPOSE keys that names denote; ValueError names an unknown one."""
    out = []
    for name in names:
        n = str(name).strip().lower()
        hits = [k for k in ABSENT_ON_PURPOSE
                if k == n or (len(n) >= 7 and all(c in "0123456789abcdef" for c in n)
                              and (k.startswith(n) or n.startswith(k)))]
        if not hits:
            raise ValueError(f"unknown commit {name!r}: the model knows "
                             + ", ".join(f"{k} ({v})" for k, v in ABSENT_ON_PURPOSE.items()))
        out.extend(h for h in hits if h not in out)
    return out


def _reference_profile(arch: str, cfg: Mapping[str, str] | None, cmd: Sequence[str],
                       absent: set[str]) -> ArchProfile:
    """The ArchProfile Features.reference() starts from: arm64 takes
    pseudo-NMIs only when configured, booted with them and not reverted;
    riscv64's hard-lockup detector is perf's when the config says so."""
    if arch == "arm64":
        nmi = ((cfg is None or _on(cfg, "CONFIG_ARM64_PSEUDO_NMI"))
               and _param(cmd, "irqchip.gicv3_pseudo_nmi") == "1"
               and SEED_ARM64_BACKTRACE not in absent)
        return ARM64_PSEUDO_NMI if nmi else ARM64
    if arch == "riscv64":
        profile = RISCV64
        if cfg is not None and _on(cfg, "CONFIG_HARDLOCKUP_DETECTOR_PERF"):
            profile = replace(profile, hardlockup_detector="perf")
        return profile
    raise ValueError(f"the model has no profile for arch {arch!r} (known: riscv64, arm64)")


@dataclass(frozen=True)
class Features:
    """The kernel being modelled. Defaults: Linux 6.12 on RISC-V with the
    project's config fragment and the harness's default command line."""
    arch: ArchProfile = RISCV64
    backtrace_ipi: bool = True        # f15c21a3de1b: arch_trigger_cpumask_backtrace via IPI_CPU_BACKTRACE
    kgdb_roundup_ipi: bool = True     # 983f12149942: kgdb_roundup_cpus via IPI_KGDB_ROUNDUP
    sbi_ipi_early: bool | None = True  # 3908ba2e0b24: SBI IPI enabled at CPUHP_AP_IRQ_RISCV_SBI_IPI_STARTING
    smp: bool = True
    hotplug: bool = True              # CONFIG_HOTPLUG_CPU
    magic_sysrq: bool = True
    kgdb: bool = True                 # CONFIG_KGDB + CONFIG_KGDB_KDB
    kgdb_attached: bool = True        # kgdboc= on the command line (machine.py DEFAULT_CMDLINE)
    lkdtm: bool = True
    softlockup_detector: bool = True
    hardlockup_detector: bool = True
    csd_lock_debug: bool = False      # CONFIG_CSD_LOCK_WAIT_DEBUG and csdlock_debug=1
    preempt: bool = False             # CONFIG_PREEMPT (tinyconfig: PREEMPT_NONE)
    preempt_rcu: bool = False
    rcu_stall_timeout: float | None = 21.0
    hung_task_timeout: float | None = 10.0
    watchdog_thresh: int = 10
    panic_timeout: int = 0
    panic_on_oops: bool = False
    nr_cpus: int = 8                  # CONFIG_NR_CPUS: kdb walks 0..NR_CPUS-1
    # kernel/watchdog.c: a detector that fires also backtraces every other
    # CPU with trigger_allbutcpu_cpu_backtrace() (36759e343ff9), excluding
    # the CPU already dumped (the stuck one). Boot parameters
    # softlockup_all_cpu_backtrace=1 / hardlockup_all_cpu_backtrace=1.
    softlockup_all_cpu_backtrace: bool = False
    hardlockup_all_cpu_backtrace: bool = False

    # ------------------------------------------------------------ builders
    @classmethod
    def riscv_6_12(cls, **overrides: Any) -> "Features":
        """Linux 6.12 with all three seed commits, kernels/configs/riscv-ipi.config."""
        return replace(cls(), **overrides)

    @classmethod
    def arm64_pseudo_nmi(cls, **overrides: Any) -> "Features":
        """arm64 6.12 booted with irqchip.gicv3_pseudo_nmi=1 (the arm64 seed)."""
        base = cls(arch=ARM64_PSEUDO_NMI, sbi_ipi_early=None)
        return replace(base, **overrides)

    @classmethod
    def reference(cls, config: Mapping[str, str] | None, *, arch: str = "riscv64",
                  cmdline: Sequence[str] | str | None = None,
                  without: Iterable[str] = ()) -> "Features":
        """What the kernel a recipe declares should do: Linux 6.12 on `arch`
        with every seed commit, configured by its .config (None: the
        project's fragment) and booted with cmdline (None: the harness
        default, which has kgdboc= and no csdlock_debug). `without` names
        seed commits (or NO_CSD_DIAGNOSTICS) the recipe declares absent on
        purpose, to describe an older kernel honestly.

        Nothing here looks at the kernel under test: a kernel that lost a
        feature the recipe did not declare absent fails the model's claims."""
        absent = set(resolve_without(without))
        if isinstance(cmdline, str):
            cmdline = cmdline.split()
        explicit_cmdline = cmdline is not None
        cmd = list(cmdline or [])
        defaults = cls()
        cfg = config if config is not None else None

        def on(name: str, default: bool) -> bool:
            return default if cfg is None else _on(cfg, name)

        profile = _reference_profile(arch, cfg, cmd, absent)

        kgdb = on("CONFIG_KGDB", True) and on("CONFIG_KGDB_KDB", True)
        kgdboc = (_param(cmd, "kgdboc") is not None) if explicit_cmdline else True
        kgdb_attached = kgdb and on("CONFIG_KGDB_SERIAL_CONSOLE", True) and kgdboc

        csd_param = _param(cmd, "csdlock_debug")
        csd_default = on("CONFIG_CSD_LOCK_WAIT_DEBUG_DEFAULT", False)
        csd_on = (csd_param not in (None, "") and _int(csd_param, 0) != 0) or (csd_default and csd_param is None)
        csd = on("CONFIG_CSD_LOCK_WAIT_DEBUG", True) and csd_on and NO_CSD_DIAGNOSTICS not in absent

        thresh = _int(_param(cmd, "watchdog_thresh"), defaults.watchdog_thresh)
        watchdog_on = thresh > 0 and _param(cmd, "nowatchdog") is None
        hard = (on("CONFIG_HARDLOCKUP_DETECTOR", True) and watchdog_on
                and (_param(cmd, "nmi_watchdog") or "1").split(",")[0] != "0")
        soft = (on("CONFIG_SOFTLOCKUP_DETECTOR", True) and watchdog_on
                and _param(cmd, "nosoftlockup") is None)

        rcu_stall = None
        if on("CONFIG_SMP", True):
            rcu_stall = float(_int(cfg.get("CONFIG_RCU_CPU_STALL_TIMEOUT"), 21) if cfg else 21)
        hung = None
        if on("CONFIG_DETECT_HUNG_TASK", True):
            hung = float(_int(cfg.get("CONFIG_DEFAULT_HUNG_TASK_TIMEOUT"), 120) if cfg else 10)
        panic_param = _param(cmd, "panic")
        panic_timeout = _int(panic_param, 0) if panic_param is not None else \
            (_int(cfg.get("CONFIG_PANIC_TIMEOUT"), 0) if cfg else 0)

        return cls(
            arch=profile,
            backtrace_ipi=SEED_BACKTRACE not in absent and SEED_ARM64_BACKTRACE not in absent,
            kgdb_roundup_ipi=SEED_KGDB not in absent,
            sbi_ipi_early=(SEED_SBI_IPI not in absent) if profile is RISCV64 or arch == "riscv64" else None,
            smp=on("CONFIG_SMP", True),
            hotplug=on("CONFIG_HOTPLUG_CPU", True),
            magic_sysrq=on("CONFIG_MAGIC_SYSRQ", True),
            kgdb=kgdb,
            kgdb_attached=kgdb_attached,
            lkdtm=on("CONFIG_LKDTM", True),
            softlockup_detector=soft,
            hardlockup_detector=hard,
            csd_lock_debug=csd,
            preempt=on("CONFIG_PREEMPT", False),
            preempt_rcu=on("CONFIG_PREEMPT_RCU", False),
            rcu_stall_timeout=rcu_stall,
            hung_task_timeout=hung,
            watchdog_thresh=thresh,
            panic_timeout=panic_timeout,
            panic_on_oops=on("CONFIG_PANIC_ON_OOPS", False) or _param(cmd, "oops") == "panic",
            nr_cpus=_int(cfg.get("CONFIG_NR_CPUS"), 8) if cfg else 8,
            softlockup_all_cpu_backtrace=_param(cmd, "softlockup_all_cpu_backtrace") == "1",
            hardlockup_all_cpu_backtrace=_param(cmd, "hardlockup_all_cpu_backtrace") == "1",
        )

    # ------------------------------------------------------------ queries
    def ipi_rows(self) -> list[str]:
        """IPI rows /proc/interrupts shows, in order. The enum entries exist
        only with the seed commits (a revert removes enum and name)."""
        rows = []
        for row in self.arch.ipi_rows:
            if row == BACKTRACE_ROW and not self.backtrace_ipi:
                continue
            if row == KGDB_ROW and not self.kgdb_roundup_ipi:
                continue
            rows.append(row)
        return rows

    def reverted(self) -> list[str]:
        """The RISC-V seed commits this kernel lacks."""
        if self.arch is not RISCV64 and self.arch.name != "riscv64":
            return []
        out = []
        if not self.backtrace_ipi:
            out.append(SEED_BACKTRACE)
        if not self.kgdb_roundup_ipi:
            out.append(SEED_KGDB)
        if self.sbi_ipi_early is False:
            out.append(SEED_SBI_IPI)
        return out

    def describe(self) -> str:
        def yn(v: bool | None) -> str:
            return "unknown" if v is None else ("yes" if v else "no")
        parts = [
            f"arch {self.arch.name}",
            f"backtrace IPI {yn(self.backtrace_ipi)}",
            f"KGDB roundup IPI {yn(self.kgdb_roundup_ipi)}",
            f"SBI IPI early {yn(self.sbi_ipi_early)}",
            f"kgdb attached {yn(self.kgdb_attached)}",
            f"hard-lockup detector {yn(self.hardlockup_detector)}",
            f"soft-lockup detector {yn(self.softlockup_detector)}",
            f"csdlock_debug {yn(self.csd_lock_debug)}",
        ]
        return ", ".join(parts)

    def to_json(self) -> dict:
        d = asdict(self)
        d["arch"] = {"name": self.arch.name, "nmi_ipis": sorted(self.arch.nmi_ipis),
                     "idle_forms": sorted(self.arch.idle_forms),
                     "uart_irq_cpu": self.arch.uart_irq_cpu,
                     "hardlockup_detector": self.arch.hardlockup_detector}
        return d
