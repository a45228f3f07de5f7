"""Fetching Debian packages (the kernel source, each arch's busybox) into the
cache without touching the system's apt sources: apt is pointed at a private
sources list, list directory and architecture list."""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from harness.core import hostcmd
from harness.core.arch import ARCHES
from harness.core.errors import HarnessError
from harness.core.paths import cache_dir

# trixie carries both linux-source-6.12 and busybox-static for riscv64;
# bookworm has no riscv64 port.
SUITE = "trixie"
MIRROR = "http://deb.debian.org/debian"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


@dataclass(frozen=True)
class DebPackage:
    name: str
    arch: str      # "all", "riscv64", ...
    version: str
    path: Path     # the downloaded .deb
    sha256: str


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock, held for the block: two harness runs that
    fetch or build the same thing serialise instead of corrupting the cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _apt_dir() -> Path:
    return cache_dir() / "apt"


def _apt_options() -> list[str]:
    root = _apt_dir()
    return [
        "-o", f"Dir::Etc::sourcelist={root / 'sources.list'}",
        "-o", "Dir::Etc::sourceparts=/nonexistent",
        "-o", f"Dir::State::Lists={root / 'lists'}",
        "-o", f"Dir::Cache={root / 'cache'}",
        "-o", "APT::Architectures::=amd64",
        *[opt for a in ARCHES.values() for opt in ("-o", f"APT::Architectures::={a.deb_arch}")],
        "-o", "Debug::NoLocking=1",
        "-o", "APT::Sandbox::User=root",
        "-q",
    ]


def _apt_update() -> None:
    root = _apt_dir()
    for sub in ("lists/partial", "cache/archives/partial"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "sources.list").write_text(f"deb [signed-by={KEYRING}] {MIRROR} {SUITE} main\n")
    hostcmd.run(["apt-get", *_apt_options(), "update"], "apt-get update (private lists)",
                log=root / "apt.log")


def fetch(name: str, arch: str) -> DebPackage:
    """Download name:arch once; later calls answer from the cache's manifest."""
    debs = cache_dir() / "debs"
    manifest = debs / f"{name}_{arch}.json"
    with file_lock(debs / ".lock"):
        if manifest.exists():
            info = json.loads(manifest.read_text())
            path = Path(info["path"])
            if path.exists():
                return DebPackage(name, arch, info["version"], path, info["sha256"])
        hostcmd.require_tool("apt-get")
        _apt_update()
        spec = name if arch == "all" else f"{name}:{arch}"
        tmp = debs / "download"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        hostcmd.run(["apt-get", *_apt_options(), "download", spec],
                    f"apt-get download {spec}", cwd=tmp, log=_apt_dir() / "apt.log")
        got = sorted(tmp.glob("*.deb"))
        if len(got) != 1:
            raise HarnessError(f"apt-get download {spec} left {len(got)} .deb files in {tmp}")
        final = debs / got[0].name
        os.replace(got[0], final)
        shutil.rmtree(tmp, ignore_errors=True)
        version = hostcmd.run(["dpkg-deb", "--field", str(final), "Version"],
                              "dpkg-deb --field").strip()
        digest = sha256_file(final)
        manifest.write_text(json.dumps({"path": str(final), "version": version, "sha256": digest}))
        return DebPackage(name, arch, version, final, digest)


def unpack(pkg: DebPackage) -> Path:
    """dpkg-deb -x into the cache, once per package digest."""
    dest = cache_dir() / "unpacked" / f"{pkg.name}_{pkg.arch}_{pkg.sha256[:16]}"
    done = dest / ".complete"
    if done.exists():
        return dest
    with file_lock(dest.parent / f"{dest.name}.lock"):
        if done.exists():
            return dest
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        hostcmd.run(["dpkg-deb", "-x", str(pkg.path), str(dest)], f"dpkg-deb -x {pkg.path.name}")
        done.touch()
    return dest


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
