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
    return {"rows": rows, "eval": {d: sum(1 for _ in p.open()) for d, p in files.eval_sets.items()}}
