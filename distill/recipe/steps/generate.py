"""generate: sample teacher traces for every prompt file into OUT/generated/traces.jsonl."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distill.recipe.schema import Recipe, RecipeError


def prompt_files(recipe: Recipe) -> list[Path]:
    spec = recipe.section("generate")
    prompts = [recipe.path(p) for p in spec.get("prompts") or []]
    if not spec.get("teacher") or not prompts:
        raise RecipeError("`generate` needs a `teacher` and a list of `prompts` files")
    return prompts


def run(recipe: Recipe, progress: bool) -> dict[str, Any]:
    """With `budget`, rejection sampling up to that many samples per problem. Finished requests are
    cached, so a killed step does not pay twice."""
    from distill.generate.base import load_backend
    from distill.generate.cache import RequestCache
    from distill.generate.prompts import read_prompts
    from distill.generate.rejection import rejection_sample
    from distill.generate.runner import sample_items, trace_row, write_jsonl

    spec = recipe.section("generate")
    out = recipe.out / "generated"
    items = [item for path in prompt_files(recipe) for item in read_prompts(str(path))]
    params = recipe.sampling("generate")
    style = spec.get("style", "r1")
    backend = load_backend(spec.get("backend", "hf"), spec["teacher"], **(spec.get("backend_options") or {}))
    with RequestCache(out / "cache.sqlite") as cache:
        try:
            if spec.get("budget"):
                rows, _, stats = rejection_sample(
                    backend, items, params, spec["budget"], style, cache, progress, spec.get("workers", 2)
                )
            else:
                results, stats = sample_items(backend, items, params, style, None, cache, progress)
                rows = [trace_row(items[i], style, n, c, spec["teacher"], params) for i, n, c in results]
        finally:
            backend.close()
    write_jsonl(rows, out / "traces.jsonl")
    return {"problems": len(items), "traces": len(rows), "cached": stats.cached, "generated": stats.generated}
