"""students/<domain>: SFT the base on one domain's shards (with `sft.replay`, also on that share of
every other domain's training rows, the base's own sample when it equals base.pretrain_share), in
this process or on the processes of the recipe's `launch:` block.

A replaying student with DDK weights (`mix` in its settings) gets every domain's val rows beside its
training rows: DDK measures each domain it draws from on that domain's val split (the other
domains' val problems, which no step trains on), so its val loss covers all of them, as the joint
baseline's does. Without `mix` its folder holds only its own domain's val rows."""

from __future__ import annotations

from typing import Any

from distill.recipe.engine import MARKERS
from distill.recipe.schema import Recipe, RecipeError
from distill.recipe.steps.training import link_mixed, train


def run(recipe: Recipe, domain: str, progress: bool) -> dict[str, Any]:
    data = recipe.workspace / "shards" / domain
    if not any(data.glob("train-*.parquet")):
        raise RecipeError(f"{recipe.workspace}: curation left no training shards for domain {domain!r}")
    replay = recipe.sft().get("replay", 0.0)
    settings = recipe.student_settings(domain)
    if replay:
        shares = {domain: 1.0, **{other: replay for other in recipe.domains if other != domain}}
        val = recipe.domains if settings.get("mix") else [domain]
        data = link_mixed(recipe.workspace / "shards", recipe.out / "student_data" / domain, shares, val)
    out = recipe.out / "students" / domain
    spec = recipe.out / MARKERS / f"students__{domain}.launch.json"  # read by the launched processes
    return train(settings, domain, data, recipe.base_model, out, progress, recipe.launch(), spec)
