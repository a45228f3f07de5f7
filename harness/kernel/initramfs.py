"""The initramfs: a newc cpio written by the harness from the recipe under
images/, cached by the digest of its content."""
from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from harness.core import yamlfile
from harness.core.arch import Arch
from harness.core.errors import InputError
from harness.core.paths import REPO_ROOT, cache_dir
from harness.core.yamlfile import Fields
from harness.guest.console_wire import SHELL_RC, SHELL_RC_PATH
from harness.kernel import debs

DEFAULT_RECIPE = REPO_ROOT / "images" / "initramfs.yaml"
DIRS = ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "dev", "proc", "sys", "tmp", "root", "etc")


@dataclass(frozen=True)
class Entry:
    name: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


def newc(entries: list[Entry]) -> bytes:
    """Serialise entries as a cpio 'newc' archive (what the kernel unpacks)."""
    out = bytearray()

    def put(ino: int, e: Entry) -> None:
        name = e.name.encode() + b"\0"
        fields = [ino, e.mode, 0, 0, 1, 0, len(e.data), 0, 0, e.rdev[0], e.rdev[1], len(name), 0]
        out.extend(b"070701" + b"".join(b"%08X" % v for v in fields))
        out.extend(name)
        out.extend(b"\0" * (-len(out) % 4))
        out.extend(e.data)
        out.extend(b"\0" * (-len(out) % 4))

    for ino, e in enumerate(entries, start=1):
        put(ino, e)
    put(0, Entry("TRAILER!!!", 0))
    out.extend(b"\0" * (-len(out) % 512))
    return bytes(out)


def _busybox(spec: dict, path: Path, arch: Arch) -> bytes:
    f = Fields(path, spec, "busybox")
    f.reject_unknown(("debian", "file"))
    if "file" in f.value:
        p = Path(f.get("file", str, required=True))
        p = p if p.is_absolute() else path.parent / p
        if not p.is_file():
            raise f.at("file").error(f"'{p}' not found")
        return p.read_bytes()
    pkg = debs.fetch(f.get("debian", str, required=True), arch.deb_arch)
    root = debs.unpack(pkg)
    for candidate in ("bin/busybox", "usr/bin/busybox"):
        if (root / candidate).is_file():
            return (root / candidate).read_bytes()
    raise InputError(pkg.path, "package holds no bin/busybox")


def build(arch: Arch, recipe: Path = DEFAULT_RECIPE) -> Path:
    data = yamlfile.load(recipe)
    f = Fields(recipe, data, "")
    f.reject_unknown(("busybox", "init"))
    busybox = _busybox(f.get("busybox", dict, required=True), recipe, arch)
    init_rel = f.get("init", str, required=True)
    init_path = (recipe.parent / init_rel).resolve()
    if not init_path.is_relative_to(recipe.parent.resolve()) or not init_path.is_file():
        raise f.at("init").error(f"'{init_rel}' must be a file inside {recipe.parent}")
    entries = [Entry(d, stat.S_IFDIR | 0o755) for d in DIRS]
    entries += [
        Entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1)),
        Entry("bin/busybox", stat.S_IFREG | 0o755, busybox),
        Entry("bin/sh", stat.S_IFLNK | 0o777, b"busybox"),
        Entry("init", stat.S_IFREG | 0o755, init_path.read_bytes()),
        # The guest half of the console protocol: the console shell reads it through $ENV.
        Entry(SHELL_RC_PATH, stat.S_IFREG | 0o644, SHELL_RC.encode()),
    ]
    blob = newc(entries)
    digest = hashlib.sha256(blob).hexdigest()
    out = cache_dir() / "initramfs" / f"{digest[:16]}.cpio"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(blob)
        os.replace(tmp, out)
    return out
