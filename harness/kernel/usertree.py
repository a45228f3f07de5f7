"""A maintainer's own working copy as a kernel source (`--tree DIR`).

The working copy is built as it is on disk: uncommitted edits and untracked
files included. The harness never writes into it: every build first mirrors
it (rsync, hard links where the file system allows) into the build slot, the
recipe's patches go onto the mirror, and make runs out of tree on the mirror.
The mirror also makes the build a snapshot: an edit saved during a build
does not leak into an Image cached under the key of the content before it.

The cache key names the content: for a git checkout, HEAD plus the diff of
the working copy against it plus every untracked (not ignored) file; for any
other directory, the digest of every file (memoised by path, size, mtime and
inode, as git's index does, so a second look takes about a second)."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
from pathlib import Path

from harness.core import hostcmd
from harness.core.children import die_with_harness
from harness.core.errors import InputError
from harness.core.paths import cache_dir
from harness.kernel.recipe import Recipe, Source

SOURCE_KIND = "worktree"

# What a tree built in place leaves behind; `make O=...` refuses such a tree
# ("The source tree is not clean, please run 'make mrproper'").
IN_PLACE_MARKERS = (".config", "include/config", "include/generated", "arch/riscv/include/generated",
                    "arch/arm64/include/generated")

# Never part of the kernel's content, never mirrored.
EXCLUDED = (".git",)


def with_tree(recipe: Recipe, tree: Path) -> Recipe:
    """recipe (its config fragments and patches) with the working copy as source."""
    tree = tree.expanduser()
    check_tree(tree)
    return dataclasses.replace(recipe, name=f"tree-{tree.resolve().name}",
                               source=Source(SOURCE_KIND, str(tree.resolve())),
                               description=f"working copy {tree.resolve()} with the config of {recipe.name}")


def check_tree(tree: Path) -> None:
    if not tree.is_dir():
        raise InputError(tree, "--tree: no such directory")
    if not (tree / "Makefile").is_file() or not (tree / "Kconfig").is_file():
        raise InputError(tree, "--tree: not a kernel source tree (no Makefile and Kconfig at its top)")
    built = [m for m in IN_PLACE_MARKERS if (tree / m).exists()]
    if built:
        raise InputError(tree, f"--tree: this tree was built in place ({built[0]} exists) and an "
                               f"out-of-tree build refuses it; run `make mrproper` in it first")


# ---------------------------------------------------------------- identity

def identity(tree: Path) -> str:
    """A string that changes whenever the content of the working copy does."""
    if (tree / ".git").exists():
        return _git_identity(tree)
    return "files:" + _walk_digest(tree)


def _git(tree: Path, *args: str) -> bytes:
    return subprocess.run(["git", "-C", str(tree), *args], capture_output=True, check=True,
                          preexec_fn=die_with_harness()).stdout


def _git_identity(tree: Path) -> str:
    try:
        head = _git(tree, "rev-parse", "HEAD").decode().strip()
        diff = _git(tree, "diff", "HEAD", "--binary")
        untracked = _git(tree, "ls-files", "--others", "--exclude-standard", "-z").split(b"\0")
    except (OSError, subprocess.CalledProcessError) as exc:
        raise InputError(tree, f"--tree: git cannot read this checkout ({exc})") from None
    h = hashlib.sha256(diff)
    for rel in sorted(u for u in untracked if u):
        path = tree / os.fsdecode(rel)
        h.update(b"\0" + rel + b"\0")
        if path.is_file() and not path.is_symlink():
            h.update(_file_digest(path).encode())
        elif path.is_symlink():
            h.update(os.readlink(path).encode())
    return f"git:{head}:{h.hexdigest()}"


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _walk_digest(tree: Path) -> str:
    memo_path = cache_dir() / "tree-digests" / (hashlib.sha256(str(tree.resolve()).encode()).hexdigest()[:16] + ".json")
    try:
        memo: dict[str, list] = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    fresh: dict[str, list] = {}
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames[:] = sorted(d for d in dirnames if d not in EXCLUDED)
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, tree)
            st = os.lstat(path)
            stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
            old = memo.get(rel)
            if old is not None and old[:3] == stamp:
                digest = old[3]
            elif os.path.islink(path):
                digest = "link:" + os.readlink(path)
            else:
                digest = _file_digest(Path(path))
            fresh[rel] = stamp + [digest]
            h.update(f"{rel}\0{digest}\0{st.st_mode & 0o111}\n".encode())
    memo_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = memo_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(fresh))
    os.replace(tmp, memo_path)
    return h.hexdigest()


# ---------------------------------------------------------------- mirror

def mirror(tree: Path, slot: Path, log: Path) -> Path:
    """Bring slot/<tree name> up to date with the working copy and return it.

    rsync compares size and mtime, so an unchanged file keeps its mtime in the
    mirror and make rebuilds only what changed. Files are hard-linked to the
    working copy where the file system allows (a patch applied on the mirror
    writes new files, so the links are never written through)."""
    hostcmd.require_tool("rsync")
    dest = slot / tree.name
    dest.mkdir(parents=True, exist_ok=True)
    argv = ["rsync", "-a", "--delete", f"--link-dest={tree}"]
    argv += [f"--exclude=/{e}" for e in EXCLUDED]
    hostcmd.run([*argv, f"{tree}/", f"{dest}/"], f"mirroring {tree}", log=log)
    return dest
