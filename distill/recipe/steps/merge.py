"""merge: the recipe's mergekit-style plan over the run's models into OUT/merged, and, with a
`search` block, `distillery merge-search` over the run's base and students.

In the plan, `base`, `students/<domain>` and `joint` name the run's own models, a step's name refers
to that step's output, and anything else is a model folder (relative to the recipe).

    merge:
      merge_method: ties            # the fixed plan (optional with a search): OUT/merged
      ...
      search:                       # distill.merge_search's settings: OUT/merge_search/model
        methods: [ties, dare_ties, task_arithmetic]
        budget: 24                  # candidate evaluations
        validation: val             # the default: each domain's val split of the curate shards
        ...                         # weight, density, scale, gradient, chain, explore, seed, limit,
                                    # sampling, backend_options, workers, style (default: eval's)

With a fixed plan too, the searched merge is the model `merge_search` next to `merged`; alone, it is
`merged`. The candidates table (OUT/merge_search/candidates.parquet) is outside the step's model
folder, so a stopped search, or a larger budget, evaluates only what is not in it yet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distill.errors import read_yaml
from distill.recipe.schema import Recipe, RecipeError

SEARCH_FOLDER = "merge_search"  # under the run's output folder: validation files, table, best.yaml


def spec(recipe: Recipe) -> dict[str, Any]:
    """The recipe's merge section: a mapping (read from its file when it names one)."""
    value = recipe.values.get("merge")
    if not value:
        raise RecipeError("the recipe has no `merge` plan")
    if isinstance(value, str):
        value = read_yaml(recipe.path(value), "merge plan", RecipeError)
    if not isinstance(value, dict):
        raise RecipeError("the merge plan must be a mapping (a mergekit-style config)")
    return value


def has_fixed_plan(recipe: Recipe) -> bool:
    """Whether the merge section holds a merge config besides its `search` block."""
    return bool(set(spec(recipe)) - {"search"})


def search_settings(recipe: Recipe) -> dict[str, Any] | None:
    """The `search` block, or None."""
    value = spec(recipe).get("search")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise RecipeError(f"merge.search must be a mapping of search settings, not {type(value).__name__}")
    return value


def plan(recipe: Recipe) -> dict[str, Any]:
    """The merge config with `base`, `students/<domain>` and `joint` replaced by model folders."""
    plan_spec = {k: v for k, v in spec(recipe).items() if k != "search"}
    if not plan_spec:
        raise RecipeError("the merge section has only a `search` block and no merge config")
    step_names = {s.get("name") for s in plan_spec.get("steps", []) if isinstance(s, dict)}

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

    if "steps" in plan_spec:
        return {**plan_spec, "steps": [rewrite(s) for s in plan_spec["steps"]]}
    return rewrite(plan_spec)


def run(recipe: Recipe) -> dict[str, Any]:
    import yaml

    import merge

    # The plan beside the merged model, not in its folder: that folder is merge's own.
    path = recipe.out / "merge.yaml"
    path.write_text(yaml.safe_dump(plan(recipe), sort_keys=False))
    steps = merge.run_config(path, recipe.out / "merged", steps_dir=recipe.out / "merge_steps")
    return {"steps": [s.name for s in steps], "methods": [s.method for s in steps]}


# ---------------------------------------------------------------------------------------------
# The search


def search_plan(recipe: Recipe, tag: str = ""):
    """The merge-search Plan of the recipe's `search` block over the run's base and students
    (checked here, at planning time). `tag`: what the scores depend on beyond the plan (the
    fingerprints of the steps that made the models and the validation split)."""
    from distill.merge_search import Plan, SearchError, settle

    settings = dict(search_settings(recipe) or {})
    folder = recipe.out / SEARCH_FOLDER
    validation = settings.pop("validation", "val")
    if validation == "val":
        files = {d: str(folder / "validation" / f"{d}.jsonl") for d in recipe.domains}
        settings.setdefault("style", "raw")  # the shards hold each prompt as the students trained on it
    elif isinstance(validation, dict) and set(validation) == set(recipe.domains):
        files = {d: str(recipe.path(str(validation[d]))) for d in recipe.domains}
    else:
        raise RecipeError(
            f"merge.search.validation must be `val` (the curate shards' val split) or one file per "
            f"domain ({', '.join(recipe.domains)}), not {validation!r}"
        )
    evaluation = recipe.section("eval")
    # Files are read as the eval benches are, in eval's prompt style; the val split has its own.
    for key in ("sampling", "backend_options", "workers", *(() if validation == "val" else ("style",))):
        if key not in settings and key in evaluation:
            settings[key] = evaluation[key]
    plan = Plan(
        base=str(recipe.base_model),
        students={d: str(recipe.out / "students" / d) for d in recipe.domains},
        validation=files,
        out=str(folder),
        tag=tag,
    )
    try:
        return settle(plan, settings, "merge.search")
    except SearchError as error:
        raise RecipeError(str(error)) from None


def write_validation(recipe: Recipe, files: dict[str, str]) -> dict[str, int]:
    """Each domain's val-split problems from the curate workspace (problem, reference, tests) as a
    file eval reads; returns the number of problems per domain."""
    import polars as pl

    from curate.workspace import Workspace
    from distill.generate.runner import write_jsonl

    last = Workspace.open(recipe.workspace).last()
    if last is None or not last.parts():
        raise RecipeError(f"{recipe.workspace}: the curate workspace has no rows to take a val split from")
    rows = (
        pl.scan_parquet([str(p) for p in last.parts()])
        .filter(pl.col("split") == "val")
        .select("problem_id", "domain", "problem", "reference", "tests")
        .unique("problem_id", keep="first", maintain_order=True)
        .collect()
    )
    counts = {}
    for domain, path in files.items():
        chosen = rows.filter(pl.col("domain") == domain)
        if chosen.is_empty():
            raise RecipeError(
                f"the curate shards have no val problems for {domain}; raise the shard stage's "
                "val_fraction or give merge.search.validation files"
            )
        records = [
            {
                "key": r["problem_id"],
                "domain": domain,
                "problem": r["problem"],
                **({"answer": r["reference"]} if r["reference"] is not None else {}),
                **({"tests": r["tests"]} if r["tests"] is not None else {}),
            }
            for r in chosen.iter_rows(named=True)
        ]
        write_jsonl(records, path)
        counts[domain] = len(records)
    return counts


def run_search(recipe: Recipe, model_out: Path, tag: str, progress: bool) -> dict[str, Any]:
    """Search (or resume the search) on the validation sets, then write the best merge to model_out."""
    import math
    import time

    import yaml

    import merge
    from distill.merge_search import best_config, stored_digests
    from distill.merge_search import run_search as search

    started = time.perf_counter()
    plan = search_plan(recipe, tag)
    folder = Path(plan.out)
    table = folder / "candidates.parquet"
    summary: dict[str, Any] = {}
    if (search_settings(recipe) or {}).get("validation", "val") == "val":
        summary["validation"] = write_validation(recipe, plan.validation)
    else:
        summary["validation"] = {d: len(Path(p).read_text().splitlines()) for d, p in plan.validation.items()}
    if table.exists() and stored_digests(table) != {plan.digest()}:
        # Scores of other models, validation files or settings (the digest reads their content, so
        # the validation files are written first): this run's own table, so start it again.
        table.unlink()
    result = search(plan, progress=progress)
    best = result.best
    if best is None:
        # No student gained on the val split, so no candidate has a share to rank by: the run goes
        # on with the first candidate (the first method at the centre of the ranges), and says so.
        best = next(row for row in result.rows if row["kind"] == "candidate")
        (folder / "best.yaml").write_text(yaml.safe_dump(best_config(plan, best), sort_keys=False))
        summary["note"] = "no student gained on the val split; the first candidate was kept"
    merge.run_config(folder / "best.yaml", model_out, steps_dir=folder / "steps")
    return {
        **summary,
        "evaluations": result.evaluated,
        "read_back": len(result.rows) - result.evaluated,
        "best": best["label"],
        "parameters": best["parameters"],
        "worst_share": None if math.isnan(best["worst_share"]) else round(best["worst_share"], 3),
        "search_seconds": round(time.perf_counter() - started, 1),
    }
