"""What is validated before anything is built or booted, across files: the
scenarios of one run (each file, then their names together) and the kernel
recipes with their patches. `rvharness check` and `rvharness run` both use it,
so check refuses exactly what run would refuse."""
from __future__ import annotations

from pathlib import Path

from harness.core.errors import InputError
from harness.kernel.recipe import Recipe, load_recipe
from harness.scenario import parse as scenario


def load_scenarios(paths: list[Path]) -> list[scenario.Scenario]:
    """Every scenario under paths, loaded and validated; two with one name
    would write into one artifact directory, so that is an error naming both."""
    loaded = [scenario.load(f) for f in scenario.discover(paths)]
    first: dict[str, scenario.Scenario] = {}
    for scn in loaded:
        other = first.setdefault(scn.name, scn)
        if other is not scn:
            raise InputError(scn.path, f"scenario name '{scn.name}' is also the name of "
                                       f"{other.path}; names must be unique in one run "
                                       "(each names its artifact directory)")
    return loaded


def load_recipes(recipes: list[Path], patches: list[Path]) -> list[Recipe]:
    """Recipes with the command line's extra patches, every patch checked
    (patchpaths) by the loading itself."""
    return [load_recipe(r).with_patches(patches) for r in recipes]
