"""eval/<model>: pass@1 of one of the run's models on the recipe's benches (distill.evaluate)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from distill.recipe.schema import Recipe


def run(recipe: Recipe, model: Path, out: Path, progress: bool) -> dict[str, Any]:
    from distill.evaluate import evaluate, resolve_bench
    from distill.generate.base import SamplingParams
    from distill.generate.runner import write_jsonl

    spec = recipe.section("eval")
    benches = []
    for bench in spec["benches"]:
        name, sep, path = str(bench).partition("=")
        benches.append(resolve_bench(f"{name}={recipe.path(path)}" if sep else bench, spec.get("data_dir")))
    params = SamplingParams(**(spec.get("sampling") or {}))
    report = evaluate(
        str(model),
        benches,
        params,
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
