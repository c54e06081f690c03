"""What the training steps (base pretraining, students, joint baseline) share: one SFT run from a
model folder (in this process, or on several under the recipe's `launch:` block), and a training
folder mixed from several domains' shards."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # not imported with the package: torchrun runs `-m distill.recipe.launch` itself
    from distill.recipe.launch import Launch


def train(
    settings: dict[str, Any],
    source: str,
    data: Path,
    base: Path,
    out: Path,
    progress: bool,
    launch: Launch | None = None,
    spec_file: Path | None = None,
) -> dict[str, Any]:
    """SFT `base` on the parquet files of `data` into `out` (resuming its checkpoints), in this process
    or, with `launch`, on its processes (the spec of the run written to `spec_file`); the summary."""
    if launch is None:
        from distill.recipe.schema import check_sft
        from distill.sft.trainer import train as sft_train

        sft_train(check_sft(settings, source), data, base, out, resume=True, progress=progress)
    else:
        assert spec_file is not None
        spec = {"settings": settings, "source": source, "data": str(data), "base": str(base), "out": str(out)}
        launch.train(spec, spec_file, progress)
    # The trainer's own summary (rank 0 writes it), so both ways report alike.
    result = json.loads((out / "summary.json").read_text())
    summary = {
        "samples": result["fit"]["kept"],
        "steps": result["steps"],
        "first_loss": result["first_loss"],
        "last_loss": result["last_loss"],
        "val_loss": result["val_loss"],
        "tokens_per_s": round(result["tokens_per_s"]),
        "train_seconds": round(result["seconds"], 1),
    }
    if result.get("world", 1) > 1:
        summary["processes"] = result["world"]
    return summary


def link_mixed(shards: Path, out: Path, shares: dict[str, float], val: list[str]) -> Path:
    """A training folder: each domain's train-* parquet files, as links to its shards or, with a share
    below 1, that share of its rows (a fixed sample, the same for every caller) written anew; and the
    val-* files of the domains in `val`."""
    import polars as pl

    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.parquet"):
        old.unlink()
    for domain, share in shares.items():
        files = sorted((shards / domain).glob("*.parquet"))
        for file in files:
            split, _, rest = file.name.partition("-")
            if (split == "train" and share >= 1.0) or (split != "train" and domain in val):
                (out / f"{split}-{domain}-{rest}").symlink_to(file.resolve())
        if share < 1.0:
            rows = pl.concat([pl.read_parquet(f) for f in files if f.name.startswith("train-")])
            rows.sample(fraction=share, seed=0).write_parquet(out / f"train-{domain}-00000.parquet")
    return out
