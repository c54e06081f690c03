"""eval/<model>: pass@1 of one of the run's models on the recipe's benches (distill.evaluate)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from distill.recipe.schema import Recipe


def benches(recipe: Recipe, written_by_the_run: bool = True) -> list:
    """The recipe's benches (distill.evaluate.Bench); without `written_by_the_run`, only those that
    are not files an earlier step writes (what can be checked before the run)."""
    from distill.evaluate import resolve_bench

    spec = recipe.section("eval")
    found = []
    for bench in spec.get("benches") or []:
        name, sep, path = str(bench).partition("=")
        text = f"{name}={recipe.path(path)}" if sep else str(bench)
        if written_by_the_run or str(recipe.out) not in text:
            found.append(resolve_bench(text, spec.get("data_dir")))
    return found


def run(recipe: Recipe, model: Path, out: Path, progress: bool) -> dict[str, Any]:
    from distill.evaluate import evaluate
    from distill.generate.runner import write_jsonl

    spec = recipe.section("eval")
    report = evaluate(
        str(model),
        benches(recipe),
        recipe.sampling("eval"),
        backend=spec.get("backend", "hf"),
        backend_options=spec.get("backend_options"),
        style=spec.get("style", "r1"),
        limit=spec.get("limit"),
        workers=spec.get("workers", 2),
        progress=progress,
    )
    (out / "report.json").write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    write_jsonl(report.samples, out / "samples.jsonl")
    return {d: v["pass@1"] for d, v in report.domains.items()}
