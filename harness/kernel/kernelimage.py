"""A kernel the user built (`--kernel-image IMAGE [--build-dir DIR]`):
System.map, vmlinux and .config are looked up in the kernel's build
directory, so probes and addr2line can symbolise and `requires:` reads the
real config.

Without --build-dir the build directory is guessed from the Image's path
(<build>/arch/<arch>/boot/Image) and, as before, the Image's own directory.
The files are presented to the harness as symlinks in a cache directory
named after their paths, the layout of a cached kernel."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from harness.core.arch import Arch
from harness.core.errors import InputError
from harness.core.paths import cache_dir
from harness.kernel.kbuild import BuiltKernel

FOUND = ("System.map", "vmlinux", ".config")


def _candidates(image: Path, build_dir: Path | None) -> list[Path]:
    if build_dir is not None:
        return [build_dir]
    image = image.resolve()
    dirs = [image.parent]
    # <build>/arch/<arch>/boot/Image
    if len(image.parents) > 3 and image.parents[2].name == "arch":
        dirs.insert(0, image.parents[3])
    return dirs


def locate(image: Path, build_dir: Path | None) -> dict[str, Path]:
    """{'System.map': path, ...} for the files found; raises when --build-dir holds none."""
    if build_dir is not None and not build_dir.is_dir():
        raise InputError(build_dir, "--build-dir: no such directory")
    found: dict[str, Path] = {}
    for d in _candidates(image, build_dir):
        for name in FOUND:
            if name not in found and (d / name).is_file():
                found[name] = (d / name).resolve()
    if build_dir is not None and "System.map" not in found and "vmlinux" not in found:
        raise InputError(build_dir, "--build-dir: holds neither System.map nor vmlinux; expected "
                                    "the directory the kernel was built in (make O=DIR)")
    return found


def prebuilt(image: Path, arch: Arch, build_dir: Path | None = None) -> tuple[BuiltKernel, dict[str, Path]]:
    if not image.is_file():
        raise InputError(image, "kernel image not found")
    arch.check_image(image)
    found = locate(image, build_dir)
    files = {"Image": image.resolve(), **found}
    key = hashlib.sha256("\0".join(f"{k}={v}" for k, v in sorted(files.items())).encode()).hexdigest()[:16]
    d = cache_dir() / "prebuilt" / key
    d.mkdir(parents=True, exist_ok=True)
    for name, target in files.items():
        link = d / name
        if link.is_symlink() or link.exists():
            if link.is_symlink() and Path(os.readlink(link)) == target:
                continue
            link.unlink()
        link.symlink_to(target)
    return BuiltKernel(key="prebuilt", dir=d, recipe_name=image.name, arch=arch), found
