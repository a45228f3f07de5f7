"""Architecture parameters, one frozen record per architecture."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import InputError


@dataclass(frozen=True)
class Arch:
    name: str
    kernel_arch: str        # ARCH= for the kernel's make
    cross_compile: str      # CROSS_COMPILE= prefix
    image_target: str       # make target and its path under the build dir
    image_path: str
    qemu: str
    machine: str
    bios: str
    console: str            # the serial device the kernel console uses
    deb_arch: str           # Debian architecture of guest userland packages
    image_magic_offset: int
    image_magic: bytes
    # Physical range the firmware (OpenSBI) runs in: a vCPU whose PC is here
    # is parked in M-mode, e.g. a hart stopped by SBI HSM after CPU offline.
    firmware_range: tuple[int, int] = (0, 0)
    # Lowest kernel virtual address; below it (outside the firmware) is user space.
    kernel_base: int = 0

    def check_image(self, path: Path) -> None:
        """Refuse an Image that is not a kernel for this architecture."""
        try:
            with open(path, "rb") as fh:
                head = fh.read(self.image_magic_offset + len(self.image_magic))
        except OSError as exc:
            raise InputError(path, f"cannot read kernel image: {exc.strerror}") from None
        if head[self.image_magic_offset:] != self.image_magic:
            raise InputError(path, f"not a {self.name} kernel Image (no {self.image_magic!r} "
                                   f"magic at offset {self.image_magic_offset:#x})")


RISCV64 = Arch(
    name="riscv64",
    kernel_arch="riscv",
    cross_compile="riscv64-linux-gnu-",
    image_target="Image",
    image_path="arch/riscv/boot/Image",
    qemu="qemu-system-riscv64",
    machine="virt",
    bios="default",
    console="ttyS0",
    deb_arch="riscv64",
    # Documentation/arch/riscv/boot-image-header.rst: magic2 "RSC\x05" at 56
    # follows magic "RISCV\0\0\0" at 48.
    image_magic_offset=48,
    image_magic=b"RISCV\x00\x00\x00RSC\x05",
    # QEMU virt loads OpenSBI fw_dynamic at the DRAM base and the kernel 2 MiB
    # above it (measured: an offlined hart's PC is 0x80009b04).
    firmware_range=(0x8000_0000, 0x8020_0000),
    kernel_base=0x8000_0000_0000_0000,   # the sign-extended upper half (Sv39/48/57)
)

ARCHES: dict[str, Arch] = {RISCV64.name: RISCV64}
