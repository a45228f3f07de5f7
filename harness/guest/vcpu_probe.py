"""Ground truth from outside the guest: where every vCPU is executing, read
through QMP (`info registers -a`) and named with the kernel's System.map.

A PC alone can mislead: a CPU spinning in LKDTM's HARDLOCKUP sits in a
file-local cpu_relax() copy, not in a function called lkdtm_*. So each sample
is classified by its PC's symbol first and, for the leaf helpers that match
nothing, by its return address (ra), which names the caller."""
from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from harness.core.arch import Arch
from harness.parsers.symbolize import SystemMap

if TYPE_CHECKING:
    from harness.guest.qmp import QmpClient

# A CPU stopped through the firmware interface (offline): RISC-V SBI HSM
# parks the hart in OpenSBI (M-mode, Arch.firmware_range); arm64 PSCI
# CPU_OFF, answered by QEMU itself, leaves the vCPU at the HVC that called it
# (measured: pc __arm_smccc_hvc+0x8, ra __invoke_psci_fn_hvc+0x30).
FIRMWARE = "firmware"
USER = "user"                  # a user-space address
IDLE = "idle"                  # the idle loop (WFI)
LKDTM = "lkdtm"                # an LKDTM crash point
KGDB_ROUNDUP = "kgdb-roundup"  # a secondary CPU held by kgdb_cpu_enter()
KDB = "kdb"                    # the CPU kdb runs on, polling the console for input
SMP_CALL = "smp-call"          # waiting for a cross call (kernel/smp.c csd_lock_wait)
CPU_STOP = "cpu-stop"          # stopped by IPI_CPU_STOP: ipi_stop()/local_cpu_stop()'s WFI loop (after a panic)
PANIC = "panic"                # the CPU running panic() (its final delay loop)
KERNEL = "kernel"              # anywhere else in the kernel
UNKNOWN = "unknown"            # a kernel address System.map does not cover

# (location, symbol pattern), first match wins; tried on the PC's symbol,
# then on the return address's.
LOCATIONS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (LKDTM, re.compile(r"^_*lkdtm_")),
    (FIRMWARE, re.compile(r"^__invoke_psci_fn_(?:hvc|smc)$")),
    # vkdb_printf: kdb's output routine (kernel/debug/kdb/kdb_io.c), where the
    # kdb CPU is caught while it writes the prompt; seen in 1 of 12 runs of
    # kdb-roundup-stuck-cpu (tests/guest/test_vcpus_kdb.py)
    (KDB, re.compile(r"^(?:v?kdb\w*|dbg_io_get_char|\w+_poll_(?:get|put)_char|"
                     r"serial8250_get_poll_char|pl011_get_poll_char|kgdboc_get_char|"
                     # kdb_getchar() touches the watchdogs on every poll (seen on arm64:
                     # touch_softlockup_watchdog, arch_touch_nmi_watchdog). pl011_read is
                     # not kdb's by itself: pl011_get_poll_char reads the UART through it
                     # (the return address then says kdb), but so does the ordinary
                     # transmit path (pl011_tx_char), caught on CPU 0 printing sysrq-l's
                     # backtraces in pseudo-nmi-backtrace-stuck-cpu [arm64-without-pseudo-nmi]
                     # (CI rehearsal, 2026-12-07), where it was classed kdb and failed a
                     # model claim on a kernel that did what it should.
                     r"(?:arch_)?touch_(?:nmi|softlockup)_watchdog\w*|wq_watchdog_touch)$")),
    (KGDB_ROUNDUP, re.compile(r"^(?:kgdb_cpu_enter|kgdb_nmicallback|kgdb_call_nmi_hook|"
                              r"ipi_kgdb_roundup)$")),
    (SMP_CALL, re.compile(r"^(?:smp_call_function_single|smp_call_function_many_cond|"
                          r"__csd_lock_wait|csd_lock_wait\w*)$")),
    # cpu_do_idle: arm64's WFI (arch_cpu_idle calls it)
    (IDLE, re.compile(r"^(?:arch_cpu_idle|default_idle_call|cpu_idle_poll|do_idle|cpu_do_idle)$")),
    (PANIC, re.compile(r"^(?:panic|nmi_panic|panic_smp_self_stop)$")),
)
# arch/riscv/kernel/smp.c ipi_stop() is `set_cpu_online(cpu, false); while (1)
# wait_for_interrupt();`. Built out of line its PC is in ipi_stop; inlined into
# handle_IPI (the default kernel: `jal set_cpu_online` at +0x44, `wfi` at +0x48,
# `j +0x48` at +0x4c) the PC is the return address of that call (the wfi) or
# the jump right after it, with ra still pointing at the wfi. Measured after
# a panic: PC handle_IPI+0x4c, ra handle_IPI+0x48 on every stopped CPU.
# arm64 (arch/arm64/kernel/smp.c): IPI_CPU_STOP and IPI_CPU_STOP_NMI both
# end in local_cpu_stop(), with cpu_park_loop()'s wfe/wfi inlined; measured
# after a panic: PC local_cpu_stop+0x2c, ra local_cpu_stop+0x10 on every
# stopped CPU (ipi-stop-panic-stuck-nmi, the CPU the NMI stopped included).
_STOP_FN = re.compile(r"^(?:ipi_stop|local_cpu_stop)$")
_IPI_HANDLER = re.compile(r"^handle_IPI$")
_STOP_LOOP_BYTES = 4                # wfi is 4 bytes: pc - ra is 0 (wfi) or 4 (j)
# The probe the runner takes when the guest stops answering; scenarios cannot use the label.
HANG_PROBE = "on-hang"

ALL_LOCATIONS = (FIRMWARE, USER, IDLE, LKDTM, KGDB_ROUNDUP, KDB, SMP_CALL, CPU_STOP, PANIC, KERNEL,
                 UNKNOWN)


_CPUINFO = re.compile(r"^processor\s*:\s*(\d+)\s*\n(?:[^\n]+\n)*?hart\s*:\s*(\d+)", re.M)


def cpu_harts(cpuinfo: str) -> dict[int, int]:
    """Linux CPU number -> hart id from /proc/cpuinfo. They differ: the hart
    that wins OpenSBI's boot lottery becomes CPU 0 (measured: Linux CPU 3
    was hart 2). QEMU's vCPU index is the hart id."""
    return {int(m.group(1)): int(m.group(2)) for m in _CPUINFO.finditer(cpuinfo.replace("\r", ""))}


# arm64's /proc/cpuinfo names no hardware id; its boot log gives each CPU's
# MPIDR (arch/arm64/kernel/setup.c and smp.c).
_ARM64_BOOT_CPU = re.compile(r"Booting Linux on physical CPU 0x([0-9a-f]+)")
_ARM64_SECONDARY = re.compile(r"CPU(\d+): Booted secondary processor 0x([0-9a-f]+)")
# QEMU virt puts 8 vCPUs in each cluster: MPIDR Aff0 = index % 8, Aff1 =
# index // 8 (hw/arm/virt.c virt_cpu_mp_affinity, ARM_DEFAULT_CPUS_PER_CLUSTER).
_VIRT_CLUSTER = 8


def _mpidr_vcpu(mpidr: int) -> int:
    return (mpidr & 0xff) + _VIRT_CLUSTER * ((mpidr >> 8) & 0xff)


def cpu_vcpus_arm64(boot_log: str) -> dict[int, int]:
    """Linux CPU number -> QEMU vCPU index from an arm64 boot log's MPIDRs.
    The last boot in the log wins (a reset boots again)."""
    text = boot_log.replace("\r", "")
    boots = list(_ARM64_BOOT_CPU.finditer(text))
    if not boots:
        return {}
    last = boots[-1]
    out = {0: _mpidr_vcpu(int(last.group(1), 16))}
    for m in _ARM64_SECONDARY.finditer(text, last.end()):
        out[int(m.group(1))] = _mpidr_vcpu(int(m.group(2), 16))
    return out


@dataclass(frozen=True)
class Sample:
    cpu: int                   # Linux CPU number (-1: hart not in the map)
    hart: int                  # QEMU vCPU index = hart id
    pc: int
    ra: int | None
    pc_symbol: str | None
    ra_symbol: str | None
    location: str

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["pc"] = f"{self.pc:#x}"
        d["ra"] = f"{self.ra:#x}" if self.ra is not None else None
        return d


def _name(symbol: str | None) -> str | None:
    return symbol.split("+", 1)[0] if symbol else None


def classify(pc: int, ra: int | None, system_map: SystemMap | None, arch: Arch,
             cpu: int = -1, hart: int = -1) -> Sample:
    """One vCPU's location class from its PC and return address."""
    pc_sym = system_map.format(pc) if system_map is not None and pc >= arch.kernel_base else None
    ra_sym = (system_map.format(ra) if system_map is not None and ra is not None
              and ra >= arch.kernel_base else None)

    def location() -> str:
        lo, hi = arch.firmware_range
        if lo <= pc < hi:
            return FIRMWARE
        if pc < arch.kernel_base:
            return USER
        if pc_sym is None:
            return UNKNOWN
        pc_name, ra_name = _name(pc_sym), _name(ra_sym)
        if _STOP_FN.match(pc_name or "") or (
                _IPI_HANDLER.match(pc_name or "") and _IPI_HANDLER.match(ra_name or "")
                and ra is not None and 0 <= pc - ra <= _STOP_LOOP_BYTES):
            return CPU_STOP
        for sym in (pc_name, ra_name):
            if sym is None:
                continue
            for loc, pattern in LOCATIONS:
                if pattern.match(sym):
                    return loc
        return KERNEL

    return Sample(cpu, hart, pc, ra, pc_sym, ra_sym, location())


@dataclass
class Probe:
    """Several samples of every vCPU, each taken with the VM stopped so the
    CPUs are seen at one instant."""
    label: str
    samples: list[list[Sample]]          # [round][vcpu]
    host_seconds: float

    def locations(self) -> dict[int, list[str]]:
        """cpu -> its location in each round."""
        out: dict[int, list[str]] = {}
        for rnd in self.samples:
            for s in rnd:
                out.setdefault(s.cpu, []).append(s.location)
        return out

    def summary(self) -> str:
        """One line a reviewer reads first: each vCPU's class and the
        distinct places it was seen, e.g. "CPU 1 (hart 1) kernel:
        smp_call_function_many_cond+0x1a2 <- on_each_cpu_cond_mask+0x20"."""
        parts = []
        for hart in sorted({s.hart for rnd in self.samples for s in rnd}):
            seen = [s for rnd in self.samples for s in rnd if s.hart == hart]
            where = list(dict.fromkeys(
                f"{s.pc_symbol or hex(s.pc)}" + (f" <- {s.ra_symbol}" if s.ra_symbol else "")
                for s in seen))
            classes = "/".join(dict.fromkeys(s.location for s in seen))
            who = f"CPU {seen[0].cpu} (hart {hart})" if seen[0].cpu >= 0 else f"hart {hart}"
            parts.append(f"{who} {classes}: {', '.join(where)}")
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "summary": self.summary(), "host_seconds": round(self.host_seconds, 4),
                "locations": {str(c): locs for c, locs in sorted(self.locations().items())},
                "samples": [[s.to_json() for s in rnd] for rnd in self.samples]}


def probe(qmp: "QmpClient", label: str, system_map: SystemMap | None, arch: Arch,
          harts: dict[int, int], rounds: int = 3, gap: float = 0.05) -> Probe:
    """Stop, read every vCPU's registers, continue; `rounds` times. harts:
    Linux CPU -> hart id (cpu_harts)."""
    cpu_of = {h: c for c, h in harts.items()}
    t0 = time.monotonic()
    out: list[list[Sample]] = []
    for i in range(rounds):
        if i:
            time.sleep(gap)
        qmp.stop()
        try:
            regs = qmp.registers()
        finally:
            qmp.cont()
        out.append([classify(r.pc, r.regs.get(arch.return_reg), system_map, arch,
                             cpu_of.get(r.index, -1), r.index)
                    for r in regs])
    return Probe(label, out, time.monotonic() - t0)
