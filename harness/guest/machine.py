"""The QEMU launcher: a typed machine description, the command line built
from it, and a context manager that always ends QEMU and its process group."""
from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pexpect

from harness.core import children, hostcmd
from harness.core.arch import Arch
from harness.core.children import die_with_harness
from harness.core.errors import MachineError
from harness.core.paths import private_dir
from harness.guest import qemuargs
from harness.guest.console import Console
from harness.guest.transcript import Transcript

DEFAULT_CMDLINE = ("earlycon={earlycon}", "kgdboc={console}")


@dataclass(frozen=True)
class MachineSpec:
    arch: Arch
    kernel: Path
    initrd: Path
    cpus: int = 4
    memory: str = "512M"
    cmdline: tuple[str, ...] = ()       # appended to the defaults
    qemu_args: tuple[str, ...] = ()     # appended to the QEMU command line
    no_reboot: bool = True
    # A guest panic reaches the host as QMP GUEST_PANICKED through pvpanic;
    # QEMU itself does nothing (panic=none), so the console keeps the whole
    # panic and the harness decides what happens next.
    pvpanic: bool = True
    balloon: bool = False

    def kernel_cmdline(self) -> str:
        parts = [f"console={self.arch.console}"]
        parts += [p.format(console=self.arch.console, earlycon=self.arch.earlycon)
                  for p in DEFAULT_CMDLINE if self.arch.earlycon or "{earlycon}" not in p]
        return " ".join(parts + list(self.cmdline))

    def argv(self, qmp_socket: Path) -> list[str]:
        argv = [
            self.arch.qemu, "-M", self.arch.machine,
            *(["-cpu", self.arch.cpu] if self.arch.cpu else []),
            "-smp", str(self.cpus), "-m", self.memory,
            *(["-bios", self.arch.bios] if self.arch.bios else []),
            "-kernel", str(self.kernel), "-initrd", str(self.initrd),
            "-append", self.kernel_cmdline(),
            # One stdio chardev muxed between the serial port and the monitor,
            # as -nographic does, but with signal=off: a Ctrl-C meant for the
            # guest must not kill QEMU. Ctrl-A b still sends a serial BREAK.
            "-display", "none",
            "-chardev", "stdio,id=con0,mux=on,signal=off",
            "-serial", "chardev:con0",
            "-mon", "chardev=con0,mode=readline",
            "-qmp", f"unix:{qmp_socket},server=on,wait=off",
            # No scenario needs a network, and the default NIC of arm64 virt
            # (virtio-net-pci) needs efi-virtio.rom from ipxe-qemu, which
            # install-host-packages does not install: without this QEMU exits
            # at start with 'failed to find romfile' (issue 25).
            "-nic", "none",
        ]
        if self.no_reboot:
            argv.append("-no-reboot")
        if self.pvpanic:
            argv += ["-device", "pvpanic-pci", "-action", "panic=none"]
        if self.balloon:
            argv += ["-device", "virtio-balloon-pci"]
        return argv + list(self.qemu_args)


class Machine:
    """with Machine(spec, artifacts) as m: m.console.run('uname -a')"""

    def __init__(self, spec: MachineSpec, artifacts: Path, boot_timeout: float = 60.0) -> None:
        self.spec = spec
        self.artifacts = artifacts
        self.boot_timeout = boot_timeout
        self.run_dir: Path | None = None
        self.child: pexpect.spawn | None = None
        self.console: Console | None = None
        self.console_log = artifacts / "console.log"
        self.argv: list[str] = []
        self._log_fh: IO[str] | None = None
        self.started_at = 0.0
        self.exit_status: int | None = None
        # The signal QEMU died of when it was already dead as the harness came
        # to end it: someone else killed it (the OOM killer, an operator) or
        # QEMU itself crashed. The harness's own SIGTERM never shows here.
        self.died_of_signal: int | None = None
        # Host wall clock (time.time()) when QEMU was started and when it was
        # reaped: comparable across VMs and hosts, unlike started_at (monotonic).
        self.wall_span: tuple[float, float] | None = None

    @property
    def qmp_socket(self) -> Path:
        assert self.run_dir is not None
        return self.run_dir / "qmp.sock"

    def start(self) -> "Machine":
        try:
            qemuargs.check(self.spec.qemu_args)   # also checked when the scenario loads
        except qemuargs.UnsafeQemuArg as exc:
            raise MachineError(f"refusing to start QEMU: qemu_args[{exc.index}]: {exc}") from None
        hostcmd.require_tool(self.spec.arch.qemu)
        self.spec.arch.check_image(self.spec.kernel)
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self.run_dir = private_dir(prefix="rvh-run-")
        self.argv = self.spec.argv(self.qmp_socket)
        (self.artifacts / "qemu.argv").write_text("\n".join(self.argv) + "\n")
        self._log_fh = open(self.console_log, "w", encoding="utf-8", errors="replace")
        tee = Transcript(self._log_fh)
        self.started_at = time.monotonic()
        started_wall = time.time()
        try:
            self.child = pexpect.spawn(self.argv[0], self.argv[1:], encoding="utf-8",
                                       codec_errors="replace", echo=False, timeout=None,
                                       dimensions=(50, 500), preexec_fn=die_with_harness())
        except pexpect.ExceptionPexpect as exc:
            self.close()
            raise MachineError(f"cannot start QEMU: {exc}", self.argv, self.console_log) from None
        self.wall_span = (started_wall, started_wall)
        children.started(self.child.pid, str(self.run_dir))
        self.child.logfile_read = tee
        self.console = Console(self.child, tee, self.argv, self.console_log)
        return self

    def boot(self) -> float:
        """Wait for the guest's ready line; return seconds since QEMU started."""
        assert self.console is not None
        self.console.wait_ready(self.boot_timeout)
        return time.monotonic() - self.started_at

    def __enter__(self) -> "Machine":
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End QEMU and anything in its process group; idempotent."""
        child, self.child = self.child, None
        if child is not None:
            pid = child.pid
            already_dead = not child.isalive()
            if not already_dead:
                # QEMU exits cleanly on SIGTERM; SIGKILL the group if it lingers.
                try:
                    os.killpg(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                deadline = time.monotonic() + 3
                while child.isalive() and time.monotonic() < deadline:
                    time.sleep(0.02)
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                child.close(force=True)
            except Exception:  # noqa: BLE001 - cleanup must not mask the real error
                pass
            self.exit_status = child.exitstatus if child.exitstatus is not None else child.signalstatus
            if already_dead:
                self.died_of_signal = child.signalstatus
            if self.wall_span is not None:
                self.wall_span = (self.wall_span[0], time.time())
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None
        if self.run_dir is not None:
            for p in self.run_dir.iterdir():
                p.unlink(missing_ok=True)
            self.run_dir.rmdir()
            self.run_dir = None
        if child is not None:
            children.ended(child.pid)    # only now: the sweep also removes a run dir left behind
