"""joint: the baseline the merge is compared with, SFT'd from the base on every domain's shards."""

from __future__ import annotations

from typing import Any

from distill.recipe.engine import MARKERS
from distill.recipe.schema import Recipe
from distill.recipe.steps.training import link_mixed, train


def run(recipe: Recipe, progress: bool) -> dict[str, Any]:
    domains = recipe.domains
    mixed = link_mixed(
        recipe.workspace / "shards", recipe.out / "joint_data", dict.fromkeys(domains, 1.0), domains
    )
    spec = recipe.out / MARKERS / "joint.launch.json"  # read by the launched processes (`launch:`)
    settings = recipe.joint_settings()
    return train(
        settings, "joint", mixed, recipe.base_model, recipe.out / "joint", progress, recipe.launch(), spec
    )
