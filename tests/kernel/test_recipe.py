"""Kernel recipe loading and the cache key, without building anything."""
from pathlib import Path

import pytest

from harness.core.errors import InputError
from harness.kernel import kconfig
from harness.kernel.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[2]
KERNELS = ROOT / "kernels"


def test_default_and_revert_recipes() -> None:
    default = load_recipe(KERNELS / "default.yaml")
    assert default.source.kind == "debian" and default.base == "tinyconfig"
    assert [p.name for p in default.fragments] == ["riscv-ipi.config"]
    for commit in ("f15c21a3de1b", "983f12149942", "3908ba2e0b24"):
        rev = load_recipe(KERNELS / f"revert-{commit}.yaml")
        assert rev.fragments == default.fragments
        assert [p.name for p in rev.patches] == ["fix-riscv-kgdb-compiled-break-rvc.patch", f"revert-{commit}.patch"]


def test_extra_patches_append_and_rename() -> None:
    default = load_recipe(KERNELS / "default.yaml")
    patch = KERNELS / "patches" / "revert-f15c21a3de1b.patch"
    r = default.with_patches([patch])
    assert r.patches[-1] == patch.resolve() and len(r.patches) == 2
    assert r.name == "default+revert-f15c21a3de1b"


def _recipe(tmp_path: Path, text: str) -> Path:
    (tmp_path / "frag.config").write_text("CONFIG_SMP=y\n")
    p = tmp_path / "r.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("text,line,fragment", [
    ("source: {debian: linux-source-6.12}\nfragment: frag.config\n", 2, "unknown key 'fragment'"),
    ("source: {debian: x}\nfragments: [../etc/passwd]\n", 2, "escapes the recipe directory"),
    ("source: {debian: x}\nfragments: [/etc/passwd]\n", 2, "must be a path relative"),
    ("source: {debian: x}\nbase: randconfig\n", 2, "unknown base config"),
    ("source: {git: x}\n", 1, "unknown key 'git'"),
    ("base: tinyconfig\n", 1, "missing required key 'source'"),
    ("source: {debian: x}\narch: mips\n", 2, "unknown arch 'mips'"),
])
def test_recipe_errors(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    with pytest.raises(InputError) as err:
        load_recipe(_recipe(tmp_path, text))
    assert fragment in str(err.value) and err.value.line == line, str(err.value)


def test_fragment_verification() -> None:
    requested = kconfig.parse("CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=8\nCONFIG_D=y\n")
    final = kconfig.parse("CONFIG_A=y\nCONFIG_B=y\nCONFIG_C=4\n")
    assert kconfig.missing(requested, final) == [
        "CONFIG_B=n (got y)", "CONFIG_C=8 (got 4)", "CONFIG_D=y (got unset)"]
