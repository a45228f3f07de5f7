"""The kernels of a review: the base (A), base + patches 1..k (the prefixes)
and base + the whole series (B, k = n). Every one goes through the kernel
cache, so a prefix is built once and shared by every review of the same
diffs on the same base.

Two bases: a recipe (--kernel; its source, config and patches, the series'
patches appended: kbuild), or a commit of the user's git tree (--tree DIR
--base REV; the recipe's config and patches at REV, then the series:
gitbuild's cached worktree, never the user's checkout).

Before anything builds, `check_applies` applies the series in a scratch
directory holding only the files it touches, with the same tool the build
uses, so that a patch that does not apply is named with its file and hunk."""
from __future__ import annotations

import re
import subprocess
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Protocol

from harness.core.children import die_with_harness
from harness.core.errors import CommandFailed, ConfigError, InputError, PatchError
from harness.kernel import kbuild, patchpaths
from harness.kernel.gitbuild import BUILT, GitTree, TreeBuilder, image_digest
from harness.kernel.recipe import Recipe
from harness.review.series import Series


@dataclass
class Built:
    k: int                          # patches of the series on the base
    kernel: kbuild.BuiltKernel | None
    reason: str = ""                # why it did not build
    cached: bool = False
    seconds: float = 0.0
    image_sha256: str = ""


class Builder(Protocol):
    recipe: Recipe
    def build(self, k: int) -> Built: ...
    def base_text(self) -> str: ...


def _prefix_recipe(recipe: Recipe, files: list[Path], k: int) -> Recipe:
    # The name labels the kernel in artifacts; the cache key ignores it.
    return replace(recipe, name=f"{recipe.name}+series{k}" if k else recipe.name,
                   patches=recipe.patches + tuple(files[:k]))


class RecipeBuilder:
    """Base = a recipe; prefix k = the recipe with the first k series patches."""

    def __init__(self, recipe: Recipe, files: list[Path], log_dir: Path,
                 say: Callable[[str], None]) -> None:
        self.recipe, self.files, self.log_dir, self.say = recipe, files, log_dir, say
        self.done: dict[int, Built] = {}

    def base_text(self) -> str:
        src = self.recipe.source
        n = len(self.recipe.patches)
        return f"{self.recipe.name} ({src.kind}: {src.value}; {n} recipe patch{'es' * (n != 1)})"

    def build(self, k: int) -> Built:
        if k in self.done:
            return self.done[k]
        r = _prefix_recipe(self.recipe, self.files, k)
        t0 = time.monotonic()
        cached = kbuild.lookup(r) is not None
        try:
            kernel = kbuild.build(r, log_dir=self.log_dir, progress=self.say)
            res = Built(k, kernel, cached=cached, image_sha256=image_digest(kernel))
        except (CommandFailed, ConfigError, PatchError) as exc:
            res = Built(k, None, str(exc).splitlines()[0])
        res.seconds = time.monotonic() - t0
        self.done[k] = res
        return res


class TreeBaseBuilder:
    """Base = a commit of a git tree with the recipe's config and patches;
    prefix k = the same with the first k series patches after the recipe's."""

    def __init__(self, tree: GitTree, base: str, recipe: Recipe, files: list[Path], log_dir: Path,
                 say: Callable[[str], None]) -> None:
        self.tree, self.base, self.recipe, self.files = tree, base, recipe, files
        self.log_dir, self.say = log_dir, say
        self.done: dict[int, Built] = {}

    def base_text(self) -> str:
        info = self.tree.describe(self.base)
        return f"{info['short']} (\"{info['subject']}\") in {self.tree.path}"

    def build(self, k: int) -> Built:
        if k in self.done:
            return self.done[k]
        r = _prefix_recipe(self.recipe, self.files, k)
        res = TreeBuilder(self.tree, r, progress=self.say).build(self.base, self.log_dir)
        contained = [f.name for f in self.files[:k] if f.name in res.patches_contained]
        if res.status == BUILT and contained:
            # gitbuild leaves out a patch the commit already contains (right for
            # the recipe's); a series patch the base already has is said plainly.
            out = Built(k, None, f"the base already contains {', '.join(contained)}")
        elif res.status == BUILT:
            out = Built(k, res.kernel, cached=res.cached, image_sha256=res.image_sha256)
        else:
            out = Built(k, None, res.reason or res.status)
        out.seconds = res.seconds
        self.done[k] = out
        return out


# ------------------------------------------------------------------ apply check

_HUNK_FAILED = re.compile(r"^Hunk #(\d+) FAILED at (\d+)", re.M)
_PATCHING = re.compile(r"^(?:patching|checking) file (.+)$", re.M)


def _failed_hunk(output: str) -> str:
    """'arch/x/y.c, hunk #2 (at line 35)' from GNU patch's output."""
    where = ""
    for line in output.splitlines():
        if m := _PATCHING.match(line):
            where = m.group(1).strip().strip("'")
        elif m := _HUNK_FAILED.match(line):
            return f"{where}, hunk #{m.group(1)} (at line {m.group(2)})"
    for line in output.splitlines():
        if "No file to patch" in line or "can't find file" in line:
            return f"{where or 'a file'}: no such file in the base"
        if "Reversed (or previously applied) patch detected" in line:
            return f"{where}: already applied in the base"
    return (output.strip().splitlines() or ["GNU patch failed"])[-1]


def check_applies(series: Series, recipe_patches: tuple[Path, ...], files: list[Path],
                  base_file: Callable[[str], bytes | None]) -> None:
    """Apply the recipe's patches, then the series, patch by patch, to a
    scratch copy of the files they touch (base_file(rel) gives a file of the
    base, None when it has none). A patch that does not apply: InputError
    naming the patch, the file and the hunk."""
    touched: list[str] = []
    for p in (*recipe_patches, *files):
        touched += [t for t in patchpaths.targets(p) if t not in touched]
    with tempfile.TemporaryDirectory(prefix="rvh-review-apply-") as tmp:
        root = Path(tmp)
        for rel in touched:
            data = base_file(rel)
            if data is not None:
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_bytes(data)
        for i, p in enumerate((*recipe_patches, *files)):
            proc = _patch(root, p)
            if proc.returncode == 0:
                continue
            if i < len(recipe_patches) and _patch(root, p, "--reverse", "--dry-run").returncode == 0:
                continue        # a recipe patch the base already contains: the build leaves it out too
            where = _failed_hunk(proc.stdout + proc.stderr)
            if i < len(recipe_patches):
                raise InputError(p, f"the recipe's patch does not apply to the base: {where}")
            sp = series.patches[i - len(recipe_patches)]
            raise InputError(series.source, f"patch {sp.number}/{sp.total} '{sp.subject}' does not apply: "
                                            f"{where}")


def _patch(root: Path, p: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(["patch", "-p1", "--forward", "--batch", "--no-backup-if-mismatch",
                           "--reject-file=-", *extra, "-d", str(root), "-i", str(p)],
                          capture_output=True, text=True, preexec_fn=die_with_harness())


def base_file_from_source(root: Path) -> Callable[[str], bytes | None]:
    def get(rel: str) -> bytes | None:
        p = root / rel
        return p.read_bytes() if patchpaths.inside(root, rel) and p.is_file() else None
    return get


def base_file_from_git(tree: GitTree, rev: str) -> Callable[[str], bytes | None]:
    def get(rel: str) -> bytes | None:
        proc = subprocess.run(["git", "-C", str(tree.path), "cat-file", "blob", f"{rev}:{rel}"],
                              capture_output=True, preexec_fn=die_with_harness())
        return proc.stdout if proc.returncode == 0 else None
    return get


