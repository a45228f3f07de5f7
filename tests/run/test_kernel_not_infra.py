"""What the guest did is a verdict about the kernel, never infrastructure
(issue 24): a boot that never reaches the shell, and a guest that powers
the machine off unasked, on the real default kernel. Before, both were
ERROR ("timed out ... waiting for the guest's ready line", "QEMU exited"),
exit 2, and bisect stepped around such commits while review ignored them.

The kernel is the default one; init is replaced on its command line
(rdinit=, arguments after "--" go to init), which from the harness's side
is the same as a kernel that hangs or resets before the shell."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import rvharness

pytestmark = pytest.mark.integration

SCENARIO = """\
name: {name}
machine:
  cpus: 2
  boot_timeout: 20
  cmdline: [rdinit=/bin/busybox, "--", {init}]
steps:
  - shell: "true"
"""


@pytest.mark.parametrize("name,init,seen", [
    ("boot-hangs", "sleep, '600'", "timed out"),
    ("guest-powers-off", "poweroff, -f", "QEMU exited"),
])
def test_a_guest_that_never_reaches_the_shell_fails_the_kernel(tmp_path: Path, name: str, init: str,
                                                               seen: str) -> None:
    scn = tmp_path / f"{name}.yaml"
    scn.write_text(SCENARIO.format(name=name, init=init))
    out = tmp_path / "out"
    proc = rvharness("run", str(scn), "--out", str(out), timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (entry,) = json.loads((out / "summary.json").read_text())
    assert entry["verdict"] == "fail", entry
    verdicts = json.loads((out / "default" / name / "verdicts.json").read_text())
    boot = next(c for c in verdicts["checks"] if c["name"] == "kernel boots to a shell")
    assert boot["verdict"] == "fail" and seen in boot["observed"], boot
    assert "Linux version" in (out / "default" / name / "console.log").read_text()
