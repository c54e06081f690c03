"""base: the model every student starts from. A given folder is used as it is; a tiny model is built
here (its tokenizer trained on the training shards' texts) and, with `pretrain`, trained on every
domain's shards (or on `pretrain_share` of each domain's training rows)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distill.recipe.schema import Recipe
from distill.recipe.steps.training import link_mixed, train


def shard_texts(shards: Path, domains: list[str]) -> list[str]:
    """Every message text of the training shards: what a tiny base's tokenizer is trained on."""
    import polars as pl

    texts: list[str] = []
    for domain in domains:
        for file in sorted((shards / domain).glob("train-*.parquet")):
            for conversation in pl.read_parquet(file, columns=["messages"])["messages"].to_list():
                texts.extend(message["content"] for message in conversation)
    return texts


def run(recipe: Recipe, progress: bool) -> dict[str, Any]:
    from distill.sft.tiny import make_tiny_base

    spec = recipe.base()
    if "path" in spec:
        return {"model": str(recipe.base_model)}
    shards, folder = recipe.workspace / "shards", recipe.out / "base"
    texts = shard_texts(shards, recipe.domains)
    init = make_tiny_base(folder / "init", texts, **dict(spec["tiny"]))
    summary: dict[str, Any] = {"tokenizer_texts": len(texts)}
    if spec.get("pretrain"):
        share = float(spec.get("pretrain_share", 1.0))
        mixed = link_mixed(shards, folder / "mixed", dict.fromkeys(recipe.domains, share), recipe.domains)
        summary.update(
            train(dict(spec["pretrain"]), "base pretrain settings", mixed, init, folder / "model", progress)
        )
    return summary
