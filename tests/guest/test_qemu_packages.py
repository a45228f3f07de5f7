"""QEMU starts, for every arch, with exactly the Debian packages that
scripts/install-host-packages names (and what they depend on).

Issue 25: arm64 `virt` adds a default virtio-net-pci NIC whose option ROM
(efi-virtio.rom) comes from ipxe-qemu, a Recommends that the script's
--no-install-recommends leaves out; on a fresh machine every arm64 boot died
with 'failed to find romfile'. A machine where ipxe-qemu happens to be
installed hides that, so besides starting QEMU with the harness's own command
line, this test traces every file QEMU opens while it starts and asserts that
each belongs to a package in the dependency closure of the script's list."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.core import hostcmd
from harness.core.arch import ARCHES
from harness.core.paths import private_dir
from harness.guest.machine import MachineSpec
from harness.guest.qmp import QmpClient

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "install-host-packages"


def named_packages() -> set[str]:
    """The `packages=( ... )` array of the install script, comments dropped."""
    text = SCRIPT.read_text()
    body = re.search(r"^packages=\((.*?)^\)", text, re.S | re.M)
    assert body, f"{SCRIPT}: no packages=( ... ) array"
    return {w for line in body.group(1).splitlines()
            for w in line.split("#", 1)[0].split()}


def dependency_closure(roots: set[str]) -> set[str]:
    """roots plus every installed package they Depend or Pre-Depend on,
    recursively; alternatives count when installed, virtual names through
    Provides."""
    out = subprocess.run(["dpkg-query", "-W", "-f",
                          "${Package}\t${Status}\t${Depends}, ${Pre-Depends}\t${Provides}\n"],
                         capture_output=True, text=True, check=True).stdout
    deps: dict[str, set[str]] = {}
    provides: dict[str, set[str]] = {}
    for line in out.splitlines():
        pkg, status, dep, prov = (line.split("\t") + ["", "", ""])[:4]
        if "install ok installed" not in status:
            continue
        names = {re.split(r"[\s(:]", alt.strip())[0]
                 for group in dep.split(",") for alt in group.split("|") if alt.strip()}
        deps[pkg] = names - {""}
        for p in prov.split(","):
            if p.strip():
                provides.setdefault(re.split(r"[\s(]", p.strip())[0], set()).add(pkg)
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        for pkg in ({name} if name in deps else set()) | provides.get(name, set()):
            if pkg not in seen:
                seen.add(pkg)
                todo.extend(deps[pkg])
    return seen


def owners(paths: list[str]) -> dict[str, str | None]:
    """The package that ships each path (dpkg -S, one call), a symlink's
    target tried too; None for files no package ships (generated caches)."""
    resolved = {p: str(Path(p).resolve()) for p in paths}
    query = sorted(set(paths) | set(resolved.values()))
    out = subprocess.run(["dpkg-query", "-S", *query], capture_output=True, text=True).stdout
    shipped: dict[str, str] = {}
    for line in out.splitlines():
        pkgs, _, path = line.partition(": ")
        shipped[path.strip()] = pkgs.split(",")[0].split(":")[0].strip()
    return {p: shipped.get(p) or shipped.get(resolved[p]) for p in paths}


def opened_files(trace: str) -> list[str]:
    """Files of the host system that QEMU opened successfully (strace -e
    trace=openat): its libraries, firmware and option ROMs."""
    found = []
    for line in trace.splitlines():
        m = re.search(r'openat\([^,]+, "([^"]+)", [^)]*\) = \d+', line)
        if m and m.group(1).startswith(("/usr/", "/lib")):
            found.append(m.group(1))
    return found


@pytest.mark.parametrize("arch", sorted(ARCHES))
def test_qemu_starts_with_only_the_named_packages(arch: str, tmp_path: Path) -> None:
    a = ARCHES[arch]
    hostcmd.require_tool(a.qemu)
    hostcmd.require_tool("strace")
    blob = tmp_path / "blob"
    blob.write_bytes(b"\0" * 4096)
    run_dir = private_dir(prefix="rvh-pkgtest-")
    try:
        sock = run_dir / "qmp.sock"
        argv = MachineSpec(arch=a, kernel=blob, initrd=blob).argv(sock) + ["-S"]
        assert argv[argv.index("-nic") + 1] == "none"
        trace = tmp_path / "strace.log"
        proc = subprocess.Popen(["strace", "-f", "-qq", "-e", "trace=openat", "-o", str(trace), *argv],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        try:
            # QMP answers only once machine init (and its ROM loading) is done.
            with QmpClient(sock, tmp_path / "qmp", pid=proc.pid, argv=argv) as q:
                assert q.status().status == "prelaunch"
                q.quit()
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
        output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
        assert "romfile" not in output, output
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    allowed = dependency_closure(named_packages())
    files = opened_files(trace.read_text())
    # Its shared libraries at least: an empty list would mean strace saw nothing.
    assert any(".so" in f for f in files), "strace saw QEMU open no library"
    strays = {f: pkg for f, pkg in owners(files).items() if pkg is not None and pkg not in allowed}
    assert not strays, (f"QEMU for {arch} opened files of packages that "
                        f"scripts/install-host-packages does not bring: {strays}")
