"""curate: the curate pipeline over the recipe's trace files into OUT/workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distill.recipe.schema import Recipe


def inputs(recipe: Recipe) -> list[Path]:
    """The recipe's `inputs`, or else what its generate (or corpus) step writes."""
    made_by = "generated" if "generate" in recipe.values else "corpus"
    default = [str(recipe.out / made_by / "traces.jsonl")]
    return [recipe.path(p) for p in (recipe.values.get("inputs") or default)]


def run(recipe: Recipe, files: list[Path], progress: bool) -> dict[str, Any]:
    from curate.pipeline import curate

    ws = recipe.workspace
    results = curate([str(p) for p in files], ws, recipe.section("curate"), progress=progress)
    first, last = results[0], results[-1]
    shards = ws / "shards"
    domains = sorted(d.name for d in shards.iterdir() if d.is_dir()) if shards.is_dir() else []
    return {"rows_in": first.get("rows_in"), "rows_out": last.get("rows_out"), "domains": domains}
