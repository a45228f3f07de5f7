"""Building kernels out of tree with the cross compiler and ccache, and the
content-addressed cache of what was built."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from harness.core import hostcmd
from harness.core.arch import Arch
from harness.core.children import die_with_harness
from harness.core.errors import CommandFailed, ConfigError, HarnessError, InputError, PatchError
from harness.core.paths import cache_dir
from harness.kernel import buildlog, debs, kconfig, patchpaths, usertree
from harness.kernel.debs import file_lock
from harness.kernel.recipe import Recipe, Source

# Bump when the layout of a cached kernel or the build procedure changes.
BUILD_FORMAT = 1
ARTIFACTS = ("Image", "System.map", "vmlinux", ".config")


@dataclass(frozen=True)
class BuiltKernel:
    key: str
    dir: Path
    recipe_name: str
    arch: Arch
    model_without: tuple[str, ...] = ()     # the recipe's `model: {without: [...]}`
    # The recipe's kernel parameters (recipe.Recipe.cmdline), not part of the key.
    cmdline: tuple[str, ...] = ()

    @property
    def image(self) -> Path:
        return self.dir / "Image"

    @property
    def system_map(self) -> Path | None:
        p = self.dir / "System.map"
        return p if p.exists() else None

    @property
    def vmlinux(self) -> Path | None:
        p = self.dir / "vmlinux"
        return p if p.exists() else None

    @property
    def config(self) -> dict[str, str] | None:
        p = self.dir / ".config"
        return kconfig.read(p) if p.exists() else None


# ---------------------------------------------------------------- sources

@dataclass(frozen=True)
class ResolvedSource:
    identity: str   # names the content, for the cache key
    root: Path      # a kernel tree ready for `make O=...`


def toolchain(arch: Arch) -> str:
    """The cross compiler's version line (`gcc --version`, first line): part
    of every cache key, so a new compiler builds anew."""
    gcc = arch.cross_compile + "gcc"
    hostcmd.require_tool(gcc)
    return hostcmd.run([gcc, "--version"], f"{gcc} --version").splitlines()[0]


def _extract_tarball(tarball: Path, digest: str) -> Path:
    dest = cache_dir() / "src" / digest[:16]
    done = dest / ".complete"
    if done.exists():
        return _single_subdir(dest)
    with file_lock(dest.parent / f"{dest.name}.lock"):
        if not done.exists():
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir(parents=True)
            hostcmd.run(["tar", "-xf", str(tarball), "-C", str(dest)], f"unpacking {tarball.name}")
            done.touch()
    return _single_subdir(dest)


def _single_subdir(dest: Path) -> Path:
    subs = [p for p in dest.iterdir() if p.is_dir()]
    if len(subs) == 1 and (subs[0] / "Makefile").exists():
        return subs[0]
    if (dest / "Makefile").exists():
        return dest
    raise HarnessError(f"{dest}: unpacked source has no top-level kernel Makefile")


def _tarball_digest(path: Path) -> str:
    """sha256 of a tarball, remembered by (path, size, mtime) so a cache hit stays fast."""
    st = path.stat()
    memo = cache_dir() / "digests.json"
    key = f"{path}:{st.st_size}:{st.st_mtime_ns}"
    table: dict[str, str] = {}
    if memo.exists():
        try:
            table = json.loads(memo.read_text())
        except ValueError:
            table = {}
    if key not in table:
        table[key] = debs.sha256_file(path)
        tmp = memo.with_suffix(".tmp")
        tmp.write_text(json.dumps(table))
        os.replace(tmp, memo)
    return table[key]


def resolve_source(src: Source) -> ResolvedSource:
    if src.kind == "debian":
        pkg = debs.fetch(src.value, "all")
        unpacked = debs.unpack(pkg)
        tarballs = sorted((unpacked / "usr/src").glob("linux-source-*.tar.*"))
        if not tarballs:
            raise HarnessError(f"{pkg.path.name} holds no usr/src/linux-source-*.tar.* tarball")
        tar = tarballs[0]
        return ResolvedSource(f"debian:{src.value}={pkg.version}:{pkg.sha256}",
                              _extract_tarball(tar, _tarball_digest(tar)))
    if src.kind == "tarball":
        tar = Path(src.value)
        digest = _tarball_digest(tar)
        return ResolvedSource(f"tarball:{digest}", _extract_tarball(tar, digest))
    if src.kind == usertree.SOURCE_KIND:
        return ResolvedSource(usertree.identity(Path(src.value)), Path(src.value))
    tree = Path(src.value)
    if not (tree / "Makefile").exists() or not (tree / "Kconfig").exists():
        raise InputError(tree, "not a kernel source tree (no Makefile and Kconfig at its top)")
    try:
        head = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True, preexec_fn=die_with_harness()).stdout.strip()
        diff = subprocess.run(["git", "-C", str(tree), "diff", "HEAD", "--binary"],
                              capture_output=True, check=True, preexec_fn=die_with_harness()).stdout
    except (OSError, subprocess.CalledProcessError):
        raise InputError(tree, "tree sources must be git checkouts, so that the cache key "
                               "can name their content") from None
    return ResolvedSource(f"git:{head}:{hashlib.sha256(diff).hexdigest()}", tree)


# ---------------------------------------------------------------- patching

def _patched_tree(resolved: ResolvedSource, patches: tuple[Path, ...], log: Path) -> Path:
    """A copy of the source with the patches applied. The copy is a hard-link
    farm (cp -al): GNU patch writes each patched file anew, so the pristine
    tree is never modified, and the copy costs seconds, not a gigabyte."""
    if not patches:
        return resolved.root
    for p in patches:
        patchpaths.check(p)
    h = hashlib.sha256(resolved.identity.encode())
    for p in patches:
        h.update(p.read_bytes())
    dest = cache_dir() / "trees" / h.hexdigest()[:16]
    done = dest / ".complete"
    if done.exists():
        return dest / "linux"
    with file_lock(dest.parent / f"{dest.name}.lock"):
        if done.exists():
            return dest / "linux"
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        hostcmd.run(["cp", "-al", str(resolved.root), str(dest / "linux")], "hard-linking the source tree")
        try:
            _apply(dest / "linux", patches, resolved, log)
        except PatchError:
            shutil.rmtree(dest, ignore_errors=True)
            raise
        done.touch()
    return dest / "linux"


def _apply(tree: Path, patches: tuple[Path, ...], resolved: ResolvedSource, log: Path) -> None:
    """Apply patches in order with GNU patch, which writes each patched file
    anew (hard links to the pristine tree are never written through)."""
    for p in patches:
        try:
            hostcmd.run(["patch", "-p1", "--forward", "--batch", "--no-backup-if-mismatch",
                         "--reject-file=-", "-d", str(tree), "-i", str(p)], f"applying {p.name}", log=log)
        except CommandFailed as exc:
            raise PatchError(f"{p}: patch does not apply to {resolved.identity.split(':')[0]} "
                             f"source:\n{exc.args[0].split(chr(10), 1)[-1]}") from None


def _work_tree(resolved: ResolvedSource, work: Path, patches: tuple[Path, ...], log: Path) -> Path:
    """The slot's source tree with exactly `patches` applied, changed in
    place so that make rebuilds only what the patches touch.

    The tree is a hard-link farm of the pristine source. Files touched by the
    previous build's patches are put back as fresh copies (a new mtime, so
    make notices) or removed when a patch created them; GNU patch writes the
    files it patches anew, so the pristine source is never modified."""
    # Checked again here, not only when the recipe was loaded: nothing
    # outside the tree may be recorded, deleted or written (patchpaths).
    new_files = sorted({f for p in patches for f in patchpaths.targets(p)})
    tree = work / resolved.root.name
    state_file = work / "applied.json"
    if not (work / ".farm-complete").exists():
        shutil.rmtree(tree, ignore_errors=True)
        work.mkdir(parents=True, exist_ok=True)
        hostcmd.run(["cp", "-al", str(resolved.root), str(tree)], "hard-linking the source tree")
        (work / ".farm-complete").touch()
        state_file.write_text(json.dumps({"patches": [], "files": []}))
    state = json.loads(state_file.read_text())
    wanted = [hashlib.sha256(p.read_bytes()).hexdigest() for p in patches]
    if state["patches"] == wanted:
        return tree
    # A state file from before names were checked may still hold bad ones.
    touched = {rel for rel in state["files"] if patchpaths.inside(tree, rel)}
    for rel in sorted(touched):
        dst, src = tree / rel, resolved.root / rel
        if dst.exists() or dst.is_symlink():
            dst.unlink()
        if src.exists():
            shutil.copy2(src, dst)
            os.utime(dst)       # newer than every object built from the patched file
    # Record what is about to change before changing it: a patch that fails
    # half-way is still undone next time.
    state_file.write_text(json.dumps({"patches": None, "files": sorted(touched | set(new_files))}))
    _apply(tree, patches, resolved, log)
    state_file.write_text(json.dumps({"patches": wanted, "files": new_files}))
    return tree


# ---------------------------------------------------------------- building

def cache_key(recipe: Recipe, resolved: ResolvedSource, toolchain: str) -> str:
    doc = {
        "format": BUILD_FORMAT,
        "arch": recipe.arch.name,
        "source": resolved.identity,
        "base": recipe.base,
        "fragments": [p.read_text() for p in recipe.fragments],
        "patches": [p.read_text(errors="surrogateescape") for p in recipe.patches],
        "toolchain": toolchain,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def make_argv(arch: Arch, tree: Path, build: Path, *targets: str, jobs: int | None = None) -> list[str]:
    """The make command line that builds targets of tree out of tree in build,
    with the cross compiler (through ccache when it is installed)."""
    argv = ["make", "-C", str(tree), f"O={build}", f"ARCH={arch.kernel_arch}",
            f"CROSS_COMPILE={arch.cross_compile}"]
    if jobs:
        argv.append(f"-j{jobs}")
    if shutil.which("ccache"):
        argv.append(f"CC=ccache {arch.cross_compile}gcc")
    return argv + list(targets)


def build_env() -> dict[str, str]:
    """The environment every kernel build runs in: ccache settings shared by
    all builds, and a fixed build identity so the Image is reproducible."""
    env = dict(os.environ)
    root = cache_dir()
    env.setdefault("CCACHE_DIR", str(root / "ccache"))
    env.setdefault("CCACHE_MAXSIZE", "5G")
    # Patched trees live in different directories; make their paths relative
    # so identical files hit the same ccache entries.
    env.setdefault("CCACHE_BASEDIR", str(root))
    env.setdefault("CCACHE_NOHASHDIR", "1")
    # A fixed build identity keeps init/version.c (and the Image) reproducible.
    env["KBUILD_BUILD_TIMESTAMP"] = "1970-01-01"
    env["KBUILD_BUILD_USER"] = "rvharness"
    env["KBUILD_BUILD_HOST"] = "rvharness"
    # Otherwise the build number ("#N" in the version banner) counts the
    # links made in the build directory, so the same source linked twice in
    # one build directory gives two Images (measured in bisect: "#2" vs "#6").
    env["KBUILD_BUILD_VERSION"] = "1"
    return env


def configure(recipe: Recipe, tree: Path, build: Path, env: dict[str, str], log: Path) -> None:
    """Make build/.config from recipe's base config and fragments; raises
    ConfigError when a fragment's option did not survive olddefconfig."""
    arch = recipe.arch
    cfg = build / ".config"
    previous = cfg.read_bytes() if cfg.exists() else None
    prev_stat = cfg.stat() if cfg.exists() else None
    hostcmd.run(make_argv(arch, tree, build, recipe.base), f"make {recipe.base}", env=env, log=log)
    if recipe.fragments:
        hostcmd.run([str(tree / "scripts/kconfig/merge_config.sh"), "-m", "-O", str(build),
                     str(cfg), *map(str, recipe.fragments)], "merging config fragments",
                    cwd=tree, env={**env, "ARCH": arch.kernel_arch,
                                   "CROSS_COMPILE": arch.cross_compile}, log=log)
    hostcmd.run(make_argv(arch, tree, build, "olddefconfig"), "make olddefconfig", env=env, log=log)
    final = kconfig.read(cfg)
    for frag in recipe.fragments:
        lost = kconfig.missing(kconfig.read(frag), final)
        if lost:
            raise ConfigError(frag, lost)
    # Same config as last time: put the old mtime back so make stays incremental.
    if previous is not None and prev_stat is not None and cfg.read_bytes() == previous:
        os.utime(cfg, ns=(prev_stat.st_atime_ns, prev_stat.st_mtime_ns))


def key_of(recipe: Recipe) -> str:
    """The cache key recipe would be built under (no build)."""
    return cache_key(recipe, resolve_source(recipe.source), toolchain(recipe.arch))


def lookup(recipe: Recipe) -> BuiltKernel | None:
    """The cached build of recipe, or None: never builds (`run --list`)."""
    key = key_of(recipe)
    out = cache_dir() / "kernels" / key
    return (BuiltKernel(key, out, recipe.name, recipe.arch, recipe.model_without, recipe.cmdline)
            if (out / ".complete").exists() else None)


def build(recipe: Recipe, *, log_dir: Path | None = None, jobs: int | None = None,
          progress=None, monitor: buildlog.Monitor | None = None) -> BuiltKernel:
    """Build recipe (or answer from the cache). progress(str) hears about slow
    steps; monitor (a live progress display) watches the compile."""
    say = progress or (lambda _msg: None)
    arch = recipe.arch
    compiler = toolchain(arch)
    resolved = resolve_source(recipe.source)
    key = cache_key(recipe, resolved, compiler)
    kernels = cache_dir() / "kernels"
    out = kernels / key
    if (out / ".complete").exists():
        return BuiltKernel(key, out, recipe.name, arch, recipe.model_without, recipe.cmdline)

    for tool in ("make", "flex", "bison", "bc", "patch"):
        hostcmd.require_tool(tool)
    logs = log_dir or (cache_dir() / "logs")
    log = logs / f"build-{recipe.name}-{key[:12]}.log"
    if log.exists():
        log.unlink()
    env = build_env()
    immutable = recipe.source.kind in ("debian", "tarball")
    # One slot per source and configuration: its build directory (and, for
    # unpacked sources, its work tree) is reused by every patch set, so a
    # new patch series rebuilds only what it touches.
    slot_doc = [resolved.identity if immutable else str(resolved.root), arch.name, recipe.base,
                [p.read_text() for p in recipe.fragments]]
    slot = cache_dir() / "work" / hashlib.sha256(json.dumps(slot_doc).encode()).hexdigest()[:16]
    build_dir = slot / "build"
    build_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(slot.parent / f"{slot.name}.lock"):
        if (out / ".complete").exists():
            return BuiltKernel(key, out, recipe.name, arch, recipe.model_without, recipe.cmdline)
        say(f"building kernel '{recipe.name}' ({key[:12]}), log: {log}")
        start = time.monotonic()
        if immutable:
            tree = _work_tree(resolved, slot, recipe.patches, log)
        elif recipe.source.kind == usertree.SOURCE_KIND:
            tree = usertree.mirror(resolved.root, slot, log)
            _apply(tree, recipe.patches, resolved, log)
        else:
            tree = _patched_tree(resolved, recipe.patches, log)
        # One kernel build per host at a time: each uses every core, and two
        # at once only make both slower (and starve any VM being timed).
        with file_lock(cache_dir() / "host-build.lock"):
            configure(recipe, tree, build_dir, env, log)
            with buildlog.watched(monitor, recipe.name, log, slot):
                hostcmd.run(make_argv(arch, tree, build_dir, arch.image_target,
                                       jobs=jobs or (os.cpu_count() or 1) + 1),
                            f"building {recipe.name}", env=env, log=log)
        store(key, build_dir, arch, {
            "recipe": recipe.name, "source": resolved.identity, "toolchain": compiler,
            "patches": [str(p) for p in recipe.patches],
            "fragments": [str(p) for p in recipe.fragments],
            "build_seconds": round(time.monotonic() - start, 1)})
        say(f"built '{recipe.name}' in {time.monotonic() - start:.0f} s")
    return BuiltKernel(key, out, recipe.name, arch, recipe.model_without, recipe.cmdline)


def store(key: str, build_dir: Path, arch: Arch, meta: dict) -> Path:
    """Copy a finished build's artifacts into the content-addressed cache
    (atomically: a reader sees all of kernels/<key> or none of it)."""
    srcs = {"Image": build_dir / arch.image_path, "System.map": build_dir / "System.map",
            "vmlinux": build_dir / "vmlinux", ".config": build_dir / ".config"}

    def fill(tmp: Path) -> None:
        for name, src in srcs.items():
            shutil.copy2(src, tmp / name)
    return _publish(key, fill, meta)


def install(key: str, files: dict[str, bytes], meta: dict) -> Path:
    """Put a kernel built elsewhere (its artifacts' bytes, carried by Dask
    from the worker that built it) into this host's cache under its key,
    with the same atomic rename as store(): two workers sharing one cache
    directory never see half a kernel."""
    unknown = set(files) - set(ARTIFACTS)
    if unknown or "Image" not in files:
        raise HarnessError(f"kernel {key[:12]}: artifacts {sorted(files)} are not {list(ARTIFACTS)}")

    def fill(tmp: Path) -> None:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
    return _publish(key, fill, meta)


def _publish(key: str, fill, meta: dict) -> Path:
    kernels = cache_dir() / "kernels"
    out = kernels / key
    with file_lock(kernels / f"{key}.lock"):
        if not (out / ".complete").exists():
            tmp = kernels / f".{key}.tmp{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            fill(tmp)
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
            (tmp / ".complete").touch()
            shutil.rmtree(out, ignore_errors=True)
            os.replace(tmp, out)
    return out
