"""rvharness: boot RISC-V kernels under QEMU and check their IPI behaviour."""
