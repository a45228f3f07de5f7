"""Building a kernel at any commit of a user's git tree, for bisect.

One git worktree under the cache (never the user's checkout) is reused for
every commit, with one out-of-tree build directory and ccache, so a step
rebuilds only what changed between two commits (docs/bisect.md has the
measured step times). The recipe's base config, fragments and patches are applied
at every commit; a patch the commit already contains (it applies in reverse)
is left out, and a patch that neither applies nor is contained makes the
commit unbuildable ("skip" for bisect).

Built kernels go into the same content-addressed cache as kbuild's, keyed by
the commit's *tree* (so two commits with the same content share a build)
and the patches applied."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.core import hostcmd, yamlfile
from harness.core.errors import CommandFailed, ConfigError, HarnessError, InputError
from harness.core.paths import cache_dir
from harness.kernel import kbuild, patchpaths
from harness.kernel.debs import file_lock, sha256_file
from harness.kernel.recipe import Recipe

# Paths whose change between two commits means the configuration must be made again.
KCONFIG_PATHSPEC = (":(glob)**/Kconfig*", ":(glob)arch/*/configs/**", ":(glob)kernel/configs/**",
                    ":(glob)scripts/kconfig/**")

BUILT, BUILD_FAILED, PATCH_FAILED = "built", "build-failed", "patch-failed"


class GitTree:
    """A user's git repository, read only (plus `git worktree` bookkeeping
    for the cache's worktree)."""

    def __init__(self, path: Path) -> None:
        self.path = path.resolve()
        if not self.path.is_dir():
            raise InputError(path, "--tree: no such directory")
        try:
            top = self._git("rev-parse", "--show-toplevel")
        except CommandFailed:
            raise InputError(path, "--tree: not a git tree (git rev-parse --show-toplevel failed)") from None
        self.top = Path(top)

    def _git(self, *args: str, env: dict[str, str] | None = None, input_text: str | None = None) -> str:
        return hostcmd.run(["git", "-C", str(self.path), *args], f"git {args[0]}",
                           env={**os.environ, **(env or {})}, input_text=input_text).strip()

    def rev(self, rev: str, what: str = "revision") -> str:
        try:
            return self._git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
        except CommandFailed:
            raise InputError(self.path, f"{what} '{rev}' is not a commit in this tree") from None

    def is_ancestor(self, a: str, b: str) -> bool:
        try:
            self._git("merge-base", "--is-ancestor", a, b)
            return True
        except CommandFailed as exc:
            if exc.returncode == 1:
                return False
            raise

    def tree_of(self, sha: str) -> str:
        return self._git("rev-parse", f"{sha}^{{tree}}")

    def parents(self, sha: str) -> list[str]:
        return self._git("rev-list", "--parents", "-n", "1", sha).split()[1:]

    def bisect_order(self, bad: str, goods: list[str]) -> list[str]:
        """Candidates in (goods, bad], best bisection point first (git's own
        measure, so merges are handled as git bisect does)."""
        out = self._git("rev-list", "--bisect-all", bad, "--not", *goods)
        return [line.split()[0] for line in out.splitlines() if line.strip()]

    def range(self, bad: str, goods: list[str]) -> list[str]:
        """Candidates in (goods, bad], oldest first."""
        out = self._git("rev-list", "--topo-order", "--reverse", bad, "--not", *goods)
        return out.split()

    def describe(self, sha: str) -> dict[str, str]:
        fmt = self._git("show", "-s", "--format=%H%n%h%n%s%n%an <%ae>%n%aI", sha).split("\n")
        stat = self._git("show", "--format=", "--stat=72", sha) if len(self.parents(sha)) <= 1 else ""
        return {"id": fmt[0], "short": fmt[1], "subject": fmt[2], "author": fmt[3], "date": fmt[4],
                "diffstat": stat}

    def revert_applies(self, culprit: str, onto: str) -> tuple[str | None, str]:
        """The tree of `onto` with `culprit` reverted, made in a private index
        (no checkout touched): (tree id, '') or (None, why it does not apply)."""
        parents = self.parents(culprit)
        if len(parents) != 1:
            return None, f"{culprit[:12]} is a merge ({len(parents)} parents); its revert is not defined"
        diff = hostcmd.run(["git", "-C", str(self.path), "diff", "--binary", parents[0], culprit],
                           "git diff")
        with tempfile.TemporaryDirectory(prefix="rvh-revert-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            self._git("read-tree", onto, env=env)
            try:
                hostcmd.run(["git", "-C", str(self.path), "apply", "--cached", "-R", "-"],
                            "git apply -R", env={**os.environ, **env}, input_text=diff)
            except CommandFailed as exc:
                return None, str(exc).split("\n", 1)[-1].strip()[:500]
            return self._git("write-tree", env=env), ""

    def commit_tree(self, tree: str, parent: str, message: str) -> str:
        """A commit object (no ref, no checkout) so a made-up tree can be built like any commit."""
        ident = {"GIT_AUTHOR_NAME": "rvharness", "GIT_AUTHOR_EMAIL": "rvharness@localhost",
                 "GIT_COMMITTER_NAME": "rvharness", "GIT_COMMITTER_EMAIL": "rvharness@localhost",
                 "GIT_AUTHOR_DATE": "@0 +0000", "GIT_COMMITTER_DATE": "@0 +0000"}
        return self._git("commit-tree", tree, "-p", parent, "-m", message, env=ident)


@dataclass
class CommitBuild:
    commit: str
    status: str                       # BUILT, BUILD_FAILED or PATCH_FAILED
    kernel: kbuild.BuiltKernel | None = None
    key: str = ""
    image_sha256: str = ""
    patches_applied: list[str] = field(default_factory=list)
    patches_contained: list[str] = field(default_factory=list)
    reason: str = ""
    seconds: float = 0.0              # building, without the waits below
    waited: float = 0.0               # for the slot and the host-wide build lock (other builds)
    cached: bool = False
    log: str = ""

    def to_json(self) -> dict:
        return {"commit": self.commit, "status": self.status, "key": self.key,
                "image_sha256": self.image_sha256, "patches_applied": self.patches_applied,
                "patches_contained": self.patches_contained, "reason": self.reason,
                "seconds": round(self.seconds, 1), "waited": round(self.waited, 1),
                "cached": self.cached, "log": self.log,
                "kernel_dir": str(self.kernel.dir) if self.kernel else ""}


class TreeBuilder:
    """Builds recipe at commits of tree, in one cached worktree + build directory."""

    def __init__(self, tree: GitTree, recipe: Recipe, progress=None) -> None:
        self.tree = tree
        self.recipe = recipe
        self.say = progress or (lambda _m: None)
        self.toolchain = kbuild.toolchain(recipe.arch)
        common = tree._git("rev-parse", "--git-common-dir")
        common_dir = (tree.path / common).resolve()
        doc = [str(common_dir), recipe.arch.name, recipe.base, [p.read_text() for p in recipe.fragments]]
        self.slot = cache_dir() / "bisect" / hashlib.sha256(json.dumps(doc).encode()).hexdigest()[:16]
        # Named like the repository's main checkout (the same for all its
        # linked worktrees), so relative paths, and so ccache entries, match
        # builds of the same source made elsewhere in the cache.
        name = common_dir.parent.name if common_dir.name == ".git" else common_dir.name.removesuffix(".git")
        self.worktree = self.slot / (name or "linux")
        self.build_dir = self.slot / "build"
        self.state_file = self.slot / "state.json"

    # -------------------------------------------------------------- patches

    def _patch_plan(self, sha: str) -> tuple[list[Path], list[Path], str]:
        """(to apply, already contained, why not buildable) for the recipe's
        patches at sha, checked in a private index without a checkout."""
        apply, contained = [], []
        with tempfile.TemporaryDirectory(prefix="rvh-patch-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            self.tree._git("read-tree", sha, env=env)
            for p in self.recipe.patches:
                base = ["apply", "--cached", "--check"]
                try:
                    self.tree._git(*base, str(p), env=env)
                    self.tree._git("apply", "--cached", str(p), env=env)   # later patches see it
                    apply.append(p)
                    continue
                except CommandFailed:
                    pass
                try:
                    self.tree._git(*base, "-R", str(p), env=env)
                    contained.append(p)
                except CommandFailed:
                    return apply, contained, f"recipe patch {p.name} neither applies nor is contained"
        return apply, contained, ""

    # -------------------------------------------------------------- worktree

    def _ensure_worktree(self, sha: str) -> None:
        if self.worktree.exists():
            try:
                hostcmd.run(["git", "-C", str(self.worktree), "rev-parse", "--git-dir"], "git rev-parse")
                return
            except CommandFailed:
                shutil.rmtree(self.worktree, ignore_errors=True)
        self.slot.mkdir(parents=True, exist_ok=True)
        self.tree._git("worktree", "prune")
        self.say(f"creating the bisect worktree {self.worktree} (once)")
        self.tree._git("worktree", "add", "--detach", "-f", str(self.worktree), sha)

    def _checkout(self, sha: str, patches: list[Path], log: Path) -> None:
        wt = ["git", "-C", str(self.worktree)]
        hostcmd.run([*wt, "checkout", "-q", "-f", "--detach", sha], f"git checkout {sha[:12]}", log=log)
        # Only files recipe patches created can be untracked; builds are out of tree.
        hostcmd.run([*wt, "clean", "-q", "-f", "-d", "-x"], "git clean", log=log)
        for p in patches:
            hostcmd.run([*wt, "apply", str(p)], f"applying {p.name}", log=log)

    def _needs_config(self, state: dict, sha: str, patches: list[Path]) -> bool:
        if not (self.build_dir / ".config").exists() or state.get("config_recipe") != self._recipe_digest():
            return True
        last = state.get("configured")
        if not last or state.get("config_patch_files") != _kconfig_files(patches):
            return True
        try:
            hostcmd.run(["git", "-C", str(self.tree.path), "diff", "--quiet", last, sha, "--",
                         *KCONFIG_PATHSPEC], "git diff")
            return False
        except CommandFailed:
            return True

    def _recipe_digest(self) -> str:
        return hashlib.sha256(json.dumps([self.recipe.base, [p.read_text() for p in self.recipe.fragments]])
                              .encode()).hexdigest()

    # -------------------------------------------------------------- build

    def key_for(self, sha: str, apply: list[Path]) -> str:
        # v2: built with a fixed build number (KBUILD_BUILD_VERSION); v1 Images differ in "#N".
        resolved = kbuild.ResolvedSource(f"git-tree:{self.tree.tree_of(sha)}:v2", self.worktree)
        recipe = Recipe(self.recipe.name, self.recipe.path, self.recipe.arch, self.recipe.source,
                        self.recipe.base, self.recipe.fragments, tuple(apply))
        return kbuild.cache_key(recipe, resolved, self.toolchain)

    def build(self, sha: str, log_dir: Path) -> CommitBuild:
        t0 = time.monotonic()
        apply, contained, why = self._patch_plan(sha)
        res = CommitBuild(sha, PATCH_FAILED, patches_applied=[p.name for p in apply],
                          patches_contained=[p.name for p in contained])
        if why:
            res.reason = why
            res.seconds = time.monotonic() - t0
            return res
        key = self.key_for(sha, apply)
        res.key = key
        out = cache_dir() / "kernels" / key
        if (out / ".complete").exists():
            res.status, res.cached = BUILT, True
            self._built(res, out, sha)
            res.seconds = time.monotonic() - t0
            return res
        failed = cache_dir() / "bisect-failed" / f"{key}.json"
        if failed.exists():     # a commit that did not build does not build on a second try
            _known_failure(res, failed)
            res.seconds = time.monotonic() - t0
            return res
        for tool in ("make", "flex", "bison", "bc"):
            hostcmd.require_tool(tool)
        log_dir.mkdir(parents=True, exist_ok=True)
        log = log_dir / f"build-{sha[:12]}.log"
        log.unlink(missing_ok=True)
        res.log = str(log)
        env = kbuild.build_env()
        # scripts/setlocalversion appends "-g<sha>" (or "+") in a git tree:
        # hide the repository from make so the Image depends on the content only.
        env["GIT_DIR"] = os.devnull
        w0 = time.monotonic()
        with file_lock(self.slot.parent / f"{self.slot.name}.lock"):
            res.waited += time.monotonic() - w0
            if (out / ".complete").exists():      # built by another bisect while we waited
                res.status, res.cached, res.log = BUILT, True, ""
                self._built(res, out, sha)
                res.seconds = time.monotonic() - t0 - res.waited
                return res
            if failed.exists():
                _known_failure(res, failed)
                return res
            reason = self._compile(sha, apply, env, log, res)
            if reason is not None:
                res.status, res.reason = BUILD_FAILED, reason
                res.seconds = time.monotonic() - t0 - res.waited
                failed.parent.mkdir(parents=True, exist_ok=True)
                failed.write_text(json.dumps({"reason": res.reason, "log": str(log)}))
                return res
            kbuild.store(key, self.build_dir, self.recipe.arch, {
                "recipe": self.recipe.name, "source": f"git:{sha}", "tree": self.tree_path_str(),
                "toolchain": self.toolchain, "patches": [str(p) for p in apply],
                "fragments": [str(p) for p in self.recipe.fragments],
                "build_seconds": round(time.monotonic() - t0, 1)})
        res.status = BUILT
        self._built(res, out, sha)
        res.seconds = time.monotonic() - t0 - res.waited
        return res

    def _compile(self, sha: str, apply: list[Path], env: dict[str, str], log: Path,
                 res: CommitBuild) -> str | None:
        """Check sha out in the worktree with the patches in apply, configure
        it when needed and make the Image, under the host-wide build lock
        (its wait goes into res.waited). None when it built, else why not.
        The caller holds the slot's lock."""
        self._ensure_worktree(sha)
        self.build_dir.mkdir(parents=True, exist_ok=True)
        state = json.loads(self.state_file.read_text()) if self.state_file.exists() else {}
        try:
            self._checkout(sha, apply, log)
            w0 = time.monotonic()
            with file_lock(cache_dir() / "host-build.lock"):
                res.waited += time.monotonic() - w0
                if self._needs_config(state, sha, apply):
                    kbuild.configure(self.recipe, self.worktree, self.build_dir, env, log)
                    state.update(configured=sha, config_recipe=self._recipe_digest(),
                                 config_patch_files=_kconfig_files(apply))
                    self.state_file.write_text(json.dumps(state))
                arch = self.recipe.arch
                hostcmd.run(kbuild.make_argv(arch, self.worktree, self.build_dir, arch.image_target,
                                             jobs=(os.cpu_count() or 1) + 1),
                            f"building {sha[:12]}", env=env, log=log)
        except (CommandFailed, ConfigError) as exc:
            state.pop("configured", None)       # a failed configure leaves .config unknown
            self.state_file.write_text(json.dumps(state))
            return _first_error(log) or str(exc).splitlines()[0]
        return None

    def _built(self, res: CommitBuild, out: Path, sha: str) -> None:
        """res's kernel: the cache entry out, built from sha."""
        res.kernel = kbuild.BuiltKernel(res.key, out, f"{self.recipe.name}@{sha[:12]}", self.recipe.arch,
                                        self.recipe.model_without, self.recipe.cmdline)
        res.image_sha256 = image_digest(res.kernel)

    def tree_path_str(self) -> str:
        return str(self.tree.path)


def _known_failure(res: CommitBuild, failed: Path) -> None:
    """res from the record of an earlier failed build of the same key."""
    info = json.loads(failed.read_text())
    res.status, res.reason, res.log, res.cached = BUILD_FAILED, info["reason"], info["log"], True


def _kconfig_files(patches: list[Path]) -> list[str]:
    """The Kconfig-side files recipe patches touch: only a change to those
    (or to the tree's own, see KCONFIG_PATHSPEC) calls for a new configure."""
    return sorted({f for p in patches for f in patchpaths.targets(p)
                   if Path(f).name.startswith("Kconfig") or "/configs/" in f or f.startswith("scripts/kconfig/")})


def image_digest(kernel: kbuild.BuiltKernel) -> str:
    """sha256 of the Image, remembered beside it (the cache entry never changes)."""
    memo = kernel.dir / "image.sha256"
    if memo.exists():
        return memo.read_text().strip()
    digest = sha256_file(kernel.image)
    try:
        memo.write_text(digest + "\n")
    except OSError:
        pass
    return digest


def _first_error(log: Path) -> str:
    """The compiler's first 'error:' line, for a one-line skip reason."""
    try:
        for line in log.read_text(errors="replace").splitlines():
            if " error: " in line or line.startswith("make") and "Error" in line:
                return line.strip()[:300]
    except OSError:
        pass
    return ""


def check_recipe_source(recipe: Recipe, tree: GitTree, explicit: bool) -> None:
    """A recipe given with --kernel that names its own source conflicts with --tree."""
    if not explicit:
        return
    src = recipe.source
    if src.kind == "tree" and Path(src.value).resolve() == tree.top:
        return
    if recipe.path is not None and _declares_source(recipe.path):
        raise InputError(recipe.path, f"key 'source' ({src.kind}: {src.value}) conflicts with --tree "
                                      f"{tree.path}: a bisect recipe gives only base, fragments and patches")


def _declares_source(path: Path) -> bool:
    data = yamlfile.load(path)
    return isinstance(data, dict) and "source" in data


__all__ = ["GitTree", "TreeBuilder", "CommitBuild", "image_digest", "check_recipe_source",
           "BUILT", "BUILD_FAILED", "PATCH_FAILED", "HarnessError"]
