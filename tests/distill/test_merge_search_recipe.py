"""A recipe's `merge: {search: ...}` block: the search runs as a step on the curate shards' val
split (never the eval sets), its table lives beside the model it writes, the searched merge is
evaluated next to the fixed one, and a larger budget evaluates only the new candidates."""

from __future__ import annotations

import json

import polars as pl
import pytest

from distill.recipe import Recipe, RecipeError, Run, run_recipe
from tests.distill.test_recipe import TINY, ran, write_recipe

SEARCH = {"methods": ["ties", "task_arithmetic"], "budget": 2, "limit": 2, "scale": [0.5, 1.5]}


def test_search_block_runs_on_the_val_split_and_resumes_with_a_larger_budget(tmp_path):
    merge = {**TINY["merge"], "search": SEARCH}
    recipe = write_recipe(tmp_path / "tiny.yaml", {"merge": merge})
    lines: list[str] = []
    results = run_recipe(recipe, tmp_path / "out", progress=False, log=lines.append)
    assert {"merge", "merge_search", "eval/merge_search"} <= ran(lines)
    assert list(results["eval"]) == ["base", "math", "science", "merged", "merge_search", "joint"]
    folder = tmp_path / "out" / "merge_search"
    assert (folder / "model" / "config.json").is_file()

    # the validation files are the val split of the shards, never the eval sets
    shards = tmp_path / "out" / "workspace" / "shards"
    for domain in ("math", "science"):
        val = pl.read_parquet(shards / domain / "val-*.parquet")
        problems = [
            json.loads(line)["problem"] for line in (folder / "validation" / f"{domain}.jsonl").open()
        ]
        assert sorted(problems) == sorted(m[0]["content"] for m in val["messages"].to_list())
        evals = {
            json.loads(line)["problem"]
            for line in (tmp_path / "out" / "corpus" / "eval" / f"{domain}.jsonl").open()
        }
        assert not evals & set(problems)
    table = pl.read_parquet(folder / "candidates.parquet")
    assert table["kind"].to_list() == ["reference"] * 3 + ["candidate"] * 2
    summary = results["steps"]["merge_search"]
    assert summary["evaluations"] == 5 and summary["read_back"] == 0

    merge["search"] = {**SEARCH, "budget": 3}
    write_recipe(recipe, {"merge": merge})
    lines = []
    results = run_recipe(recipe, tmp_path / "out", progress=False, log=lines.append)
    assert ran(lines) == {"merge_search", "eval/merge_search"}  # the fixed merge and the students stay
    assert results["steps"]["merge_search"]["evaluations"] == 1
    assert results["steps"]["merge_search"]["read_back"] == 5


def test_search_alone_is_the_merged_model_and_bad_settings_fail_at_planning(tmp_path):
    run = Run(Recipe.load({**TINY, "merge": {"search": SEARCH}}, tmp_path / "out"), progress=False)
    assert "merge" in {s.name for s in run.steps} and "merge_search" not in {s.name for s in run.steps}
    assert run.models["merged"] == tmp_path / "out" / "merged"
    with pytest.raises(RecipeError, match="unknown search keys"):
        Run(Recipe.load({**TINY, "merge": {"search": {"budgte": 3}}}, tmp_path / "out"), progress=False)
    with pytest.raises(RecipeError, match="validation must be"):
        Run(
            Recipe.load({**TINY, "merge": {"search": {"validation": "test"}}}, tmp_path / "out"),
            progress=False,
        )
