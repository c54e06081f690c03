"""corpus: write the built-in synthetic teacher corpus (distill.demo.corpus) into OUT/corpus."""

from __future__ import annotations

import dataclasses
from typing import Any

from distill.recipe.schema import Recipe, unknown_keys


def config(recipe: Recipe):
    """The corpus sizes of the recipe's `corpus` section (a CorpusConfig)."""
    from distill.demo.corpus import CorpusConfig

    section = recipe.section("corpus")
    unknown_keys(section, tuple(f.name for f in dataclasses.fields(CorpusConfig)), "corpus")
    return CorpusConfig(**section)


def run(recipe: Recipe) -> dict[str, Any]:
    from distill.demo.corpus import write_corpus

    files = write_corpus(recipe.out / "corpus", config(recipe))
    with files.traces.open() as traces:
        rows = sum(1 for _ in traces)
    summary: dict[str, Any] = {"rows": rows, "eval": _counts(files.eval_sets)}
    if files.val_sets:
        summary["val"] = _counts(files.val_sets)
    return summary


def _counts(files: dict[str, Any]) -> dict[str, int]:
    return {d: sum(1 for _ in p.open()) for d, p in files.items()}
