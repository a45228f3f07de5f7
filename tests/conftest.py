"""Shared fixtures. Integration fixtures build real kernels (cached) and the
real initramfs; nothing here is mocked."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.core.arch import RISCV64
from harness.kernel import initramfs, kbuild
from harness.kernel.recipe import load_recipe

ROOT = Path(__file__).resolve().parent.parent
KERNELS = ROOT / "kernels"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="rewrite the headers of tests/data/console/* from the parsers' output")


@pytest.fixture(scope="session")
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


def _built(name: str) -> kbuild.BuiltKernel:
    return kbuild.build(load_recipe(KERNELS / f"{name}.yaml"), progress=print)


@pytest.fixture(scope="session")
def default_kernel() -> kbuild.BuiltKernel:
    return _built("default")


@pytest.fixture(scope="session")
def revert_backtrace_kernel() -> kbuild.BuiltKernel:
    return _built("revert-f15c21a3de1b")


@pytest.fixture(scope="session")
def initrd() -> Path:
    return initramfs.build(RISCV64)
