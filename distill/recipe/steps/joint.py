"""joint: the baseline the merge is compared with, SFT'd from the base on every domain's shards."""

from __future__ import annotations

from typing import Any

from distill.recipe.schema import Recipe
from distill.recipe.steps.training import link_mixed, train


def run(recipe: Recipe, progress: bool) -> dict[str, Any]:
    domains = recipe.domains
    mixed = link_mixed(
        recipe.workspace / "shards", recipe.out / "joint_data", dict.fromkeys(domains, 1.0), domains
    )
    return train(recipe.joint_settings(), "joint", mixed, recipe.base_model, recipe.out / "joint", progress)
