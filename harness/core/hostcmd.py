"""Running host commands: always argv lists, never shell strings."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Mapping, Sequence

from harness.core.arch import ARCHES
from harness.core.children import die_with_harness
from harness.core.errors import CommandFailed, ToolMissing

# The Debian package that provides each host tool, for error messages.
TOOL_PACKAGES: dict[str, str] = {
    **{tool: pkg for a in ARCHES.values()
       for tool, pkg in ((a.qemu, a.qemu_package), (a.cross_compile + "gcc", a.gcc_package),
                         (a.addr2line, a.binutils_package))},
    "ccache": "ccache",
    "make": "make",
    "patch": "patch",
    "flex": "flex",
    "bison": "bison",
    "bc": "bc",
    "apt-get": "apt",
    "dpkg-deb": "dpkg",
    "tar": "tar",
    "xz": "xz-utils",
    "rsync": "rsync",
}


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pkg = TOOL_PACKAGES.get(name, name)
        raise ToolMissing(name, f"install the Debian package '{pkg}' (`make setup` does this)")
    return path


def run(argv: Sequence[str], what: str, *, cwd: Path | None = None,
        env: Mapping[str, str] | None = None, log: Path | None = None,
        input_text: str | None = None, timeout: float | None = None) -> str:
    """Run argv; return stdout (or '' when logged to a file); raise CommandFailed."""
    argv = [str(a) for a in argv]
    require_tool(argv[0])
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as fh:
            fh.write(("$ " + " ".join(argv) + "\n").encode())
            fh.flush()
            proc = subprocess.run(argv, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                  input=input_text.encode() if input_text is not None else None,
                                  timeout=timeout, preexec_fn=die_with_harness())
        if proc.returncode != 0:
            raise CommandFailed(what, argv, proc.returncode, log, _tail(log))
        return ""
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                          input=input_text, timeout=timeout, preexec_fn=die_with_harness())
    if proc.returncode != 0:
        raise CommandFailed(what, argv, proc.returncode, None,
                            (proc.stderr or proc.stdout).strip()[-2000:])
    return proc.stdout


def _tail(log: Path, lines: int = 15) -> str:
    try:
        text = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])
