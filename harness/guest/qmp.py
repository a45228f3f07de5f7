"""A synchronous QMP client for the run's QEMU: commands, HMP, typed errors,
and a timestamped record of every asynchronous event.

    with QmpClient.for_machine(machine) as qmp:
        mark = qmp.mark()
        qmp.stop()
        qmp.wait_event("STOP", 2.0, since=mark)
        pcs = [r.pc for r in qmp.registers()]

The connection and its private asyncio loop thread (qmp_link.py says
why) are harness.guest.qmp_link.QmpLink, the event record is in
qmp_eventlog.py, the errors and values in qmp_types.py, the `info
registers` parser in info_registers.py; this module adds the command helpers.

Measured on QEMU 7.2 riscv64 -M virt (see docs/qmp.md): HMP errors come back
as text inside a successful QMP reply, and not always prefixed "Error:" (an
unknown HMP command answers "unknown command: '...'", `cpu 99` answers
"invalid CPU index"), so hmp() checks a list of patterns (HMP_ERROR_PATTERNS).
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Mapping

from harness.guest.info_registers import CpuRegisters, parse_info_registers
from harness.guest.qmp_link import QmpLink
from harness.guest.qmp_types import (
    HmpError,
    QmpCommandNotFound,
    QmpCommandRefused,
    QmpConnectionLost,
    QmpError,
    VCpu,
    VmStatus,
)

if TYPE_CHECKING:
    from harness.guest.machine import Machine

# HMP reports failures as plain text in a successful QMP reply. "Error: " is
# what hmp_handle_error() prints; the others are the HMP parser's and
# individual commands' own messages, as seen on QEMU 7.2.
HMP_ERROR_PATTERNS: tuple[re.Pattern[str], ...] = tuple(re.compile(p, re.M) for p in (
    r"^Error: ",
    r"^unknown command: ",
    r"^Try \"help [^\"]*\" for more information",
    r"^invalid CPU index",
))

# Commands that query-commands lists although they may not work, and how
# supports() tries them. Trying inject-nmi *executes* it: on riscv QEMU 7.2
# refuses it ("this feature or command is not currently supported") without
# side effects, but on an architecture that implements it (x86, s390x, arm
# with a GIC that supports it) the guest really receives an NMI.
PROBES: dict[str, tuple[str, Mapping[str, object]]] = {
    "inject-nmi": ("inject-nmi", {}),
    # Listed on every machine; refused (DeviceNotActive) without a balloon device.
    "balloon": ("query-balloon", {}),
    "query-balloon": ("query-balloon", {}),
}


class QmpClient(QmpLink):
    """Synchronous QMP client. Every call is bounded: commands by
    `command_timeout` (or execute(..., _timeout=)), connecting by
    `connect_timeout`, close() by a few seconds whatever QEMU does."""

    @classmethod
    def for_machine(cls, machine: "Machine", **kwargs: Any) -> "QmpClient":
        """A client for a started harness.guest.machine.Machine (not yet connected)."""
        pid = machine.child.pid if machine.child is not None else None
        return cls(machine.qmp_socket, machine.artifacts, pid=pid, argv=machine.argv,
                   console_log=machine.console_log, **kwargs)

    # ------------------------------------------------------------ commands

    def hmp(self, command_line: str, *, check: bool = True,
            timeout: float | None = None) -> str:
        """Run an HMP command through human-monitor-command; return its text
        (CR-LF turned into LF). HmpError when the text reports a failure
        (HMP_ERROR_PATTERNS) unless check=False. Each call gets a fresh HMP
        monitor: state such as `cpu N` does not carry to the next call."""
        text = self.execute("human-monitor-command", {"command-line": command_line},
                            _timeout=timeout)
        text = str(text).replace("\r\n", "\n")
        if check and any(p.search(text) for p in HMP_ERROR_PATTERNS):
            raise HmpError(command_line, text, self.argv, self.console_log)
        return text

    def commands(self) -> frozenset[str]:
        """Names query-commands lists (cached)."""
        if self._commands is None:
            self._commands = frozenset(c["name"] for c in self.execute("query-commands"))
        return self._commands

    def supports(self, cmd: str) -> bool:
        """Whether cmd works here. Listing in query-commands is necessary;
        for the commands in PROBES (inject-nmi, balloon) it is not enough,
        so they are tried: True unless QEMU refuses. Trying inject-nmi runs
        it (an NMI is delivered where it is supported; on riscv it is
        refused). Results are cached."""
        if cmd not in self._supports:
            ok = cmd in self.commands()
            if ok and cmd in PROBES:
                probe, probe_args = PROBES[cmd]
                try:
                    self.execute(probe, probe_args)
                except (QmpCommandRefused, QmpCommandNotFound):
                    ok = False
            self._supports[cmd] = ok
        return self._supports[cmd]

    # ------------------------------------------------------------ helpers

    def status(self) -> VmStatus:
        r = self.execute("query-status")
        return VmStatus(r["status"], bool(r["running"]))

    def stop(self) -> None:
        """Pause the vCPUs. QEMU emits STOP only if the VM was running: in
        "prelaunch" (-S, before the first cont) stop does nothing at all."""
        self.execute("stop")

    def cont(self) -> None:
        self.execute("cont")

    def system_reset(self) -> None:
        """Reset the machine. With -no-reboot QEMU 7.2 emits SHUTDOWN
        (reason "host-qmp-system-reset") and exits instead; without it,
        RESET (same reason) and the VM keeps its run state."""
        self.execute("system_reset")

    def balloon(self, value: int) -> None:
        """Ask the balloon driver for a guest size of `value` bytes. Needs a
        balloon device (QmpCommandRefused, DeviceNotActive, otherwise) and a
        guest driver to take effect."""
        self.execute("balloon", value=int(value))

    def query_balloon(self) -> int:
        """The guest's current size in bytes as the balloon device reports it."""
        return int(self.execute("query-balloon")["actual"])

    def quit(self, timeout: float = 5.0) -> None:
        """Make QEMU exit; return once it has closed the connection."""
        try:
            self.execute("quit")
        except QmpConnectionLost:
            pass                            # it went before the reply: fine
        self.wait_closed(timeout)

    def vcpus(self) -> list[VCpu]:
        """query-cpus-fast: one entry per vCPU with its host thread id."""
        return [VCpu(int(c["cpu-index"]), int(c["thread-id"]), str(c.get("qom-path", "")),
                     dict(c.get("props") or {}), str(c.get("target", "")))
                for c in self.execute("query-cpus-fast")]

    def registers(self) -> list[CpuRegisters]:
        """Every vCPU's registers from `info registers -a` (plain `info
        registers` shows CPU 0 only). A running VM's values are a snapshot
        per CPU, not taken at one instant; stop() first for a consistent set."""
        text = self.hmp("info registers -a")
        cpus = parse_info_registers(text)
        if not cpus or any("pc" not in c.regs for c in cpus):
            raise self._err(QmpError, "cannot parse `info registers -a` output", text[:2000])
        return cpus
