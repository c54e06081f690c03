"""merge: the recipe's mergekit-style plan over the run's models into OUT/merged.

In the plan, `base`, `students/<domain>` and `joint` name the run's own models, a step's name refers
to that step's output, and anything else is a model folder (relative to the recipe)."""

from __future__ import annotations

from typing import Any

from distill.errors import read_yaml
from distill.recipe.schema import Recipe, RecipeError


def plan(recipe: Recipe) -> dict[str, Any]:
    """The merge config with `base`, `students/<domain>` and `joint` replaced by model folders."""
    spec = recipe.values.get("merge")
    if not spec:
        raise RecipeError("the recipe has no `merge` plan")
    if isinstance(spec, str):
        spec = read_yaml(recipe.path(spec), "merge plan", RecipeError)
    if not isinstance(spec, dict):
        raise RecipeError("the merge plan must be a mapping (a mergekit-style config)")
    step_names = {s.get("name") for s in spec.get("steps", []) if isinstance(s, dict)}

    def model(ref: Any) -> Any:
        if not isinstance(ref, str) or ref in step_names:
            return ref
        if ref == "base":
            return str(recipe.base_model)
        if ref == "joint" or ref.startswith("students/"):
            if ref.startswith("students/") and ref.split("/", 1)[1] not in recipe.domains:
                raise RecipeError(f"merge plan names {ref!r}, but the recipe's domains are {recipe.domains}")
            return str(recipe.out / ref)
        return str(recipe.path(ref))

    def rewrite(block: dict[str, Any]) -> dict[str, Any]:
        block = dict(block)
        if "base_model" in block:
            block["base_model"] = model(block["base_model"])
        if "models" in block:
            block["models"] = [
                {**m, "model": model(m["model"])} if isinstance(m, dict) else model(m)
                for m in block["models"]
            ]
        return block

    if "steps" in spec:
        return {**spec, "steps": [rewrite(s) for s in spec["steps"]]}
    return rewrite(spec)


def run(recipe: Recipe) -> dict[str, Any]:
    import yaml

    import merge

    # The plan beside the merged model, not in its folder: that folder is merge's own.
    path = recipe.out / "merge.yaml"
    path.write_text(yaml.safe_dump(plan(recipe), sort_keys=False))
    steps = merge.run_config(path, recipe.out / "merged", steps_dir=recipe.out / "merge_steps")
    return {"steps": [s.name for s in steps], "methods": [s.method for s in steps]}
