"""vCPU location classes for the CPU stop IPI and panic(), from the PCs a
probe read after a panic on the default kernel (docs/ipi-types.md): every
stopped CPU at handle_IPI+0x4c with ra handle_IPI+0x48 (ipi_stop() inlined:
jal set_cpu_online at +0x44, wfi at +0x48, j +0x48 at +0x4c), the panic CPU
in __delay or handle_exception with ra panic+0x29c."""
from __future__ import annotations

import pytest

from harness.core.arch import RISCV64
from harness.guest.vcpu_probe import ALL_LOCATIONS, CPU_STOP, IDLE, KERNEL, PANIC, classify
from harness.parsers.symbolize import SystemMap

# The default kernel's System.map around those functions (6.12.117).
MAP = SystemMap.parse("""\
ffffffff80006c38 t handle_IPI
ffffffff80006cee t ipi_stop_outline_neighbour
ffffffff8000e38e T set_cpu_online
ffffffff8018b20c T __delay
ffffffff8018b22a T __udelay
ffffffff8018bb5e T panic
ffffffff8018be4c T add_taint
ffffffff80190264 T arch_cpu_idle
ffffffff8019026e T cpu_do_idle
ffffffff80190cd4 T default_idle_call
ffffffff80190d00 T do_something_else
ffffffff80194b20 T handle_exception
ffffffff80194c60 T ret_from_exception
ffffffff80200000 T ipi_stop
ffffffff80200020 T after_ipi_stop
""")
HANDLE_IPI, PANIC_FN, DELAY = 0xffffffff80006c38, 0xffffffff8018bb5e, 0xffffffff8018b20c


def where(pc: int, ra: int | None) -> str:
    return classify(pc, ra, MAP, RISCV64).location


@pytest.mark.parametrize("pc_off", [0x48, 0x4c])
def test_the_inlined_stop_loop_is_cpu_stop(pc_off: int) -> None:
    assert where(HANDLE_IPI + pc_off, HANDLE_IPI + 0x48) == CPU_STOP


def test_an_out_of_line_ipi_stop_is_cpu_stop() -> None:
    assert where(0xffffffff80200010, 0xffffffff8000e3a0) == CPU_STOP


@pytest.mark.parametrize("pc_off, ra_off", [
    (0x34, 0x40),    # handle_IPI's epilogue just after another handler returned
    (0x40, 0x34),    # ra behind the PC by more than the loop
    (0x48, None),    # no return address read
])
def test_other_places_in_handle_ipi_are_not_cpu_stop(pc_off: int, ra_off: int | None) -> None:
    ra = None if ra_off is None else HANDLE_IPI + ra_off
    assert where(HANDLE_IPI + pc_off, ra) == KERNEL


@pytest.mark.parametrize("pc", [DELAY + 0x8, 0xffffffff80194b20, PANIC_FN + 0x2a0])
def test_the_panic_cpu_is_panic(pc: int) -> None:
    assert where(pc, PANIC_FN + 0x29c) == PANIC


def test_idle_is_still_idle() -> None:
    assert where(0xffffffff8019026c, 0xffffffff80190cea) == IDLE


def test_scenarios_may_name_the_new_classes() -> None:
    assert CPU_STOP in ALL_LOCATIONS and PANIC in ALL_LOCATIONS
