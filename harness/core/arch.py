"""Architecture parameters, one frozen record per architecture."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.core.errors import InputError


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
    cpu: str = ""           # QEMU -cpu model ("" = the machine's default)
    earlycon: str = ""      # the earlycon= parameter ("" = no early console)
    # `info registers -a` name of the register holding the return address
    # (lower-cased by qmp.parse_info_registers).
    return_reg: str = "ra"
    # Debian packages that provide the QEMU binary and the cross compiler.
    qemu_package: str = ""
    gcc_package: str = ""
    binutils_package: str = ""

    @property
    def addr2line(self) -> str:
        return self.cross_compile + "addr2line"

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
    earlycon="sbi",
    return_reg="ra",
    qemu_package="qemu-system-misc",
    gcc_package="gcc-riscv64-linux-gnu",
    binutils_package="binutils-riscv64-linux-gnu",
)

ARM64 = Arch(
    name="arm64",
    kernel_arch="arm64",
    cross_compile="aarch64-linux-gnu-",
    image_target="Image",
    image_path="arch/arm64/boot/Image",
    qemu="qemu-system-aarch64",
    # GICv3: pseudo-NMIs need GIC priority masking, which GICv2 lacks.
    machine="virt,gic-version=3",
    # No firmware: QEMU boots the Image at EL1 itself and answers PSCI calls
    # (CPU_ON/CPU_OFF) in its own code, so nothing runs below the kernel.
    bios="",
    console="ttyAMA0",
    deb_arch="arm64",
    # Documentation/arch/arm64/booting.rst: the 64-byte header ends with
    # magic "ARM\x64" at offset 56.
    image_magic_offset=56,
    image_magic=b"ARM\x64",
    firmware_range=(0, 0),
    # The kernel's half of a 48-bit (or 52-bit) VA space: TTBR1 addresses.
    kernel_base=0xffff_0000_0000_0000,
    cpu="max",
    # QEMU virt's PL011 sits at 0x09000000 (hw/arm/virt.c memmap VIRT_UART).
    earlycon="pl011,0x9000000",
    return_reg="x30",
    qemu_package="qemu-system-arm",
    gcc_package="gcc-aarch64-linux-gnu",
    binutils_package="binutils-aarch64-linux-gnu",
)

ARCHES: dict[str, Arch] = {a.name: a for a in (RISCV64, ARM64)}
