"""Kernel recipes: where the source comes from, how it is configured and
which patches go on top. Loaded from YAML under kernels/."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from harness.core import names, yamlfile
from harness.core.arch import ARCHES, Arch
from harness.core.errors import InputError
from harness.core.yamlfile import Fields
from harness.kernel import patchpaths
from harness.model.features import resolve_without

RECIPE_KEYS = ("name", "description", "extends", "arch", "source", "base", "fragments", "patches", "model",
               "cmdline")
MODEL_KEYS = ("without",)
SOURCE_KINDS = ("debian", "tarball", "tree")
BASE_CONFIGS = ("tinyconfig", "defconfig", "allnoconfig")


@dataclass(frozen=True)
class Source:
    kind: str      # one of SOURCE_KINDS
    value: str     # package name, or an absolute path


@dataclass(frozen=True)
class Recipe:
    name: str
    path: Path | None
    arch: Arch
    source: Source
    base: str
    fragments: tuple[Path, ...]
    patches: tuple[Path, ...]
    description: str = ""
    # Seed commits the kernel lacks on purpose (`model: {without: [...]}`):
    # the reference model predicts that kernel. Patch names never do.
    model_without: tuple[str, ...] = ()
    # Kernel parameters this kernel is booted with, after the harness's own
    # (console=, earlycon=, kgdboc=) and before a scenario's. Not part of the
    # build: recipes that differ only here share one cached kernel.
    cmdline: tuple[str, ...] = ()

    def with_patches(self, extra: list[Path]) -> "Recipe":
        if not extra:
            return self
        for p in extra:
            if not p.is_file():
                raise InputError(p, "patch file not found")
            patchpaths.check(p)
        suffix = "+" + "+".join(p.stem for p in extra)
        return replace(self, name=self.name + suffix,
                       patches=self.patches + tuple(p.resolve() for p in extra))


def _inside(base: Path, rel: str, where: yamlfile.Where) -> Path:
    """Resolve rel against base; refuse anything that escapes base."""
    if Path(rel).is_absolute():
        raise where.error(f"'{rel}' must be a path relative to {base}")
    resolved = (base / rel).resolve()
    if not resolved.is_relative_to(base.resolve()):
        raise where.error(f"'{rel}' escapes the recipe directory {base}")
    if not resolved.is_file():
        raise where.error(f"'{rel}' not found (looked for {resolved})")
    return resolved


def load_recipe(path: Path, _seen: tuple[Path, ...] = ()) -> Recipe:
    path = path.resolve() if path.exists() else path
    data = yamlfile.load(path)
    f = Fields(path, data, "")
    f.reject_unknown(RECIPE_KEYS)
    base_dir = path.parent

    parent: Recipe | None = None
    ext = f.get("extends", str)
    if ext is not None:
        parent_path = _inside(base_dir, ext, f.at("extends"))
        if parent_path in _seen or parent_path == path:
            raise f.at("extends").error(f"recipe inheritance loops through {parent_path}")
        parent = load_recipe(parent_path, _seen + (path,))

    arch_name = f.get("arch", str, parent.arch.name if parent else "riscv64")
    if arch_name not in ARCHES:
        raise f.at("arch").error(f"unknown arch '{arch_name}' (expected one of: {', '.join(ARCHES)})")

    source = _source(f, parent)

    base = f.get("base", str, parent.base if parent else "tinyconfig")
    if base not in BASE_CONFIGS:
        raise f.at("base").error(f"unknown base config '{base}' (expected one of: {', '.join(BASE_CONFIGS)})")

    def paths(key: str, inherited: tuple[Path, ...]) -> tuple[Path, ...]:
        if key not in f.value:
            return inherited
        items = f.str_list(key)
        seq = f.value[key]
        found = tuple(_inside(base_dir, rel, yamlfile.item_where(path, seq, i, f"{key}[{i}]"))
                      for i, rel in enumerate(items))
        if key == "patches":
            for p in found:
                patchpaths.check(p)     # before anything records or applies it
        return inherited + found

    model_without = _model_without(f, parent)
    name = f.get("name", str, path.stem)
    if problem := names.problem(name):      # it names the kernel's artifact directory
        raise (f.at("name") if "name" in f.value else f.where).error(problem)
    return Recipe(
        name=name,
        path=path,
        arch=ARCHES[arch_name],
        source=source,
        base=base,
        fragments=paths("fragments", parent.fragments if parent else ()),
        patches=paths("patches", parent.patches if parent else ()),
        description=f.get("description", str, ""),
        model_without=model_without,
        # A child's parameters come after its parent's: the kernel (and the
        # model) take the last value of a repeated parameter.
        cmdline=(parent.cmdline if parent else ()) + tuple(_cmdline_words(f)),
    )


def _source(f: Fields, parent: Recipe | None) -> Source:
    """The recipe's `source` (a tarball or tree path resolved against the
    recipe's directory, and checked to exist), else its parent's."""
    if "source" in f.value:
        sf = Fields(f.path, f.value["source"], "source", f.at("source"))
        sf.reject_unknown(SOURCE_KINDS)
        if len(sf.value) != 1:
            raise sf.where.error(f"expected exactly one of: {', '.join(SOURCE_KINDS)}")
        kind = next(iter(sf.value))
        value = sf.get(kind, str, required=True)
        if kind in ("tarball", "tree"):
            p = Path(value).expanduser()
            if not p.is_absolute():
                p = f.path.parent / p
            if not p.exists():
                raise sf.at(kind).error(f"'{value}' does not exist")
            value = str(p.resolve())
        return Source(kind, value)
    if parent is not None:
        return parent.source
    raise f.where.error("missing required key 'source'")


def _model_without(f: Fields, parent: Recipe | None) -> tuple[str, ...]:
    """`model: {without: [...]}`, resolved to seed commit names, else the parent's."""
    if "model" not in f.value:
        return parent.model_without if parent else ()
    mf = Fields(f.path, f.value["model"], "model", f.at("model"))
    mf.reject_unknown(MODEL_KEYS)
    absent = mf.str_list("without")
    try:
        return tuple(resolve_without(absent))
    except ValueError as exc:
        raise mf.at("without").error(str(exc)) from None


def _cmdline_words(f: Fields) -> list[str]:
    if "cmdline" not in f.value:
        return []
    words = f.str_list("cmdline")
    for i, w in enumerate(words):
        if not w or any(c.isspace() for c in w):
            raise yamlfile.item_where(f.path, f.value["cmdline"], i, f"cmdline[{i}]").error(
                f"'{w}' must be one kernel parameter (no spaces, not empty)")
    return words
