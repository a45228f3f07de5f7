"""vCPU location of the CPU kdb runs on. The samples are those the `held`
probe took in a run of scenarios/kdb-roundup-stuck-cpu.yaml on the default
kernel (1 of 12 runs on 2026-11-28; CI's matrix hit it once): CPU 1, kdb's
CPU, was caught in vkdb_printf, kdb's output routine, writing the prompt,
and was classed "kernel", so the model's claim that it sits in kdb in every
sample failed on a kernel that did what it should."""
from __future__ import annotations

import pytest

from harness.core.arch import ARM64, RISCV64
from harness.guest.vcpu_probe import KDB, KERNEL, KGDB_ROUNDUP, classify
from harness.parsers.symbolize import SystemMap

# The functions around those PCs, placed so that the offsets are the run's.
MAP = SystemMap.parse("""\
ffffffff80066000 t kgdb_cpu_enter
ffffffff80066494 T dbg_remove_sw_break
ffffffff800665b0 t kgdb_nmicallback
ffffffff8006661c T kgdb_other
ffffffff80068000 T vkdb_printf
ffffffff80068588 T kdb_printf
ffffffff8006a000 T kdbnearsym
ffffffff8006a100 T kernel_after_kdb
ffffffff8013b5bc t serial8250_get_poll_char
ffffffff8013b5e8 t __uart_port_nbcon_acquire
""")


def where(pc: int, ra: int | None) -> str:
    return classify(pc, ra, MAP, RISCV64).location


@pytest.mark.parametrize("pc, ra", [
    (0xffffffff80068402, 0xffffffff80068184),    # vkdb_printf+0x402 <- vkdb_printf+0x184 (the run)
    (0xffffffff8013b5ca, 0xffffffff8013b5ca),    # serial8250_get_poll_char+0xe (the run)
    (0xffffffff80068590, 0xffffffff8006a100),    # kdb_printf
    (0xffffffff8006a010, None),                  # kdbnearsym: kdb's symbol lookup
])
def test_kdb_code_is_kdb(pc: int, ra: int | None) -> None:
    assert where(pc, ra) == KDB


def test_a_rounded_up_cpu_is_not_kdb() -> None:
    # kgdb_cpu_enter+0x21c <- kgdb_nmicallback+0x5a, CPUs 0 and 2 of the run
    assert where(0xffffffff8006621c, 0xffffffff8006660a) == KGDB_ROUNDUP


def test_a_function_after_kdb_code_is_kernel() -> None:
    assert where(0xffffffff8006a110, 0xffffffff8006a120) == KERNEL


# arm64: the UART read helper, under kdb's poll and under the ordinary
# transmit path (the PCs of the CI rehearsal's probe, 2026-12-07).
ARM64_MAP = SystemMap.parse("""\
ffff8000801b9868 t pl011_read
ffff8000801b9898 t pl011_get_poll_char
ffff8000801b9cdc t pl011_tx_char
ffff8000801b9d30 t pl011_tx_chars
""")


def test_pl011_read_is_kdb_only_under_its_poll() -> None:
    tx = classify(0xffff8000801b9888, 0xffff8000801b9d28, ARM64_MAP, ARM64)      # pl011_read <- pl011_tx_char
    poll = classify(0xffff8000801b9888, 0xffff8000801b98b0, ARM64_MAP, ARM64)    # pl011_read <- pl011_get_poll_char
    assert tx.location == KERNEL
    assert poll.location == KDB
