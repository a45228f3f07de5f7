"""Typed errors. Every HarnessError is an infrastructure or usage problem
(exit code 2); a failed check is not an exception but a verdict."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence


class HarnessError(Exception):
    """Base for everything the CLI reports as one line and exit code 2."""


class InputError(HarnessError, ValueError):
    """Bad user input: names the file, the line (when known) and the key."""

    def __init__(self, path: Path | str | None, message: str, line: int | None = None,
                 column: int | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.line = line
        self.column = column
        self.detail = message
        where = ""
        if self.path is not None:
            where = str(self.path)
            if line is not None:
                where += f":{line}"
                if column is not None:
                    where += f":{column}"
            where += ": "
        super().__init__(where + message)


class ToolMissing(HarnessError):
    def __init__(self, tool: str, hint: str) -> None:
        self.tool = tool
        super().__init__(f"required tool '{tool}' not found on PATH; {hint}")


class CommandFailed(HarnessError):
    """A host command failed. Carries the argv and where its log went."""

    def __init__(self, what: str, argv: Sequence[str], returncode: int,
                 log: Path | None = None, tail: str = "") -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.log = log
        msg = f"{what}: `{' '.join(self.argv[:6])}{' ...' if len(self.argv) > 6 else ''}` exited {returncode}"
        if log is not None:
            msg += f" (log: {log})"
        if tail:
            msg += "\n" + tail
        super().__init__(msg)


class PatchError(HarnessError):
    pass


class GuestCommandRejected(HarnessError):
    """The guest shell refused a scenario's command (a syntax error), or the
    command ended the console shell: the scenario is wrong, not the kernel."""


class ConfigError(HarnessError):
    """Options the fragment asked for did not survive olddefconfig."""

    def __init__(self, fragment: Path, missing: Sequence[str]) -> None:
        self.missing = list(missing)
        super().__init__(
            f"{fragment}: {len(self.missing)} requested option(s) did not survive "
            f"olddefconfig (unmet dependencies?): {', '.join(self.missing)}")


class MachineError(HarnessError):
    """QEMU or the guest failed. Carries the QEMU command line and the console log path."""

    def __init__(self, message: str, argv: Sequence[str] = (), console_log: Path | None = None,
                 excerpt: str = "") -> None:
        self.argv = list(argv)
        self.console_log = console_log
        self.excerpt = excerpt
        super().__init__(message)


class BootTimeout(MachineError):
    pass


class ConsoleTimeout(MachineError):
    pass


class GuestCrashed(MachineError):
    """The kernel panicked or oopsed while the harness waited for something."""

    def __init__(self, title: str, text: str, argv: Sequence[str] = (),
                 console_log: Path | None = None) -> None:
        self.title = title
        self.text = text
        super().__init__(f"kernel crashed: {title}", argv, console_log, text)


class QemuExited(MachineError):
    pass


# Exit codes of every command (bisect-run has git bisect's own).
EXIT_OK, EXIT_FAIL, EXIT_ERROR = 0, 1, 2
# Every scenario was skipped: no check ran, so nothing passed (as pytest's 5).
EXIT_NOTHING_RAN = 5
