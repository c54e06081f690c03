"""longattn (opt-in): keep, per category, the documents with the strongest long-range dependencies.

Each row's text (`fields`, joined by blank lines) is scored with LongAttn (see curate.longctx.longattn)
under one layer of a local causal LM (`model`); LDS is normalised within the row's `category` and the
top `keep_fraction` of each category's scored rows (rounded up) is kept. Rows shorter than
`min_tokens` (default: one window) are dropped as `too_short`, the others below the cut as
`low_long_dependency`; the detail gives the score and the rank. Columns added: longattn_tokens, longattn_windows, longattn_ds, longattn_du,
longattn_score. Enable it in curate.yaml:

    stages:
      longattn: {enabled: true, model: /models/Llama-3.1-8B, category: meta.category, window: 32768}
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, ClassVar

import polars as pl
import pyarrow.parquet as pq
from tqdm import tqdm

from curate.errors import CurateError
from curate.longctx.fields import base_column, field_expr
from curate.longctx.longattn import NORMALIZERS, DocScore, Ranked, keep_count, model_checksum, rank_documents
from curate.stage import Stage, StageContext, decide

SCORE_COLUMNS = {
    "longattn_tokens": pl.Int64,
    "longattn_windows": pl.Int64,
    "longattn_ds": pl.Float64,
    "longattn_du": pl.Float64,
    "longattn_score": pl.Float64,
}
SCORER_OPTIONS = ("window", "k", "layer", "chunk", "min_tokens", "dtype", "device", "bos")


class LongAttn(Stage):
    name = "longattn"
    version = "1"
    enabled_by_default: ClassVar[bool] = False
    parallel = False  # all the work (the model) happens once, in prepare
    defaults: ClassVar[dict[str, Any]] = {
        "model": None,
        "fields": ["problem"],
        "category": "source",
        "keep_fraction": 0.5,
        "alpha": 0.5,
        "normalize": "zscore",
        "window": 32768,
        "k": None,
        "layer": 0,
        "chunk": 512,
        "min_tokens": None,
        "dtype": "float32",
        "device": "cpu",
        "bos": True,
    }
    types: ClassVar[dict[str, Any]] = {"model": str, "fields": (list, str), "k": int, "min_tokens": int}
    choices: ClassVar[dict[str, tuple]] = {"normalize": NORMALIZERS}

    def __init__(self, **options: Any):
        super().__init__(**options)
        opts = self.options
        if not opts["model"]:
            raise CurateError("stage longattn: set `model` to a local causal LM folder")
        if isinstance(opts["fields"], str):
            opts["fields"] = [opts["fields"]]
        for spec in [*opts["fields"], opts["category"]]:
            base_column(spec)
        keep_count(1, opts["keep_fraction"])
        self.scores: pl.DataFrame | None = None

    def fingerprint(self) -> dict[str, Any]:
        return {**super().fingerprint(), "model_sha256": model_checksum(self.options["model"])}

    def _batches(self, ctx: StageContext) -> Iterator[pl.DataFrame]:
        """row_id, text and category of the input rows, reading only the columns needed."""
        opts = self.options
        columns = sorted({"row_id", base_column(opts["category"]), *map(base_column, opts["fields"])})
        text = pl.concat_str([field_expr(f) for f in opts["fields"]], separator="\n\n", ignore_nulls=True)
        for part in ctx.input_parts():
            for batch in pq.ParquetFile(part).iter_batches(columns=columns, batch_size=64):
                yield pl.from_arrow(batch).select(
                    "row_id", text.alias("text"), field_expr(opts["category"]).alias("category")
                )

    def prepare(self, ctx: StageContext) -> None:
        from curate.longctx.longattn import LongAttnScorer

        opts = self.options
        scorer = LongAttnScorer(opts["model"], **{k: opts[k] for k in SCORER_OPTIONS})
        row_ids: list[int] = []
        categories: list[str | None] = []
        scores: list[DocScore] = []
        started = time.time()
        bar = tqdm(
            total=ctx.input_rows(),
            desc=f"{ctx.index:02d} longattn scoring",
            unit="doc",
            disable=not ctx.progress,
            leave=False,
        )
        with bar:
            for batch in self._batches(ctx):
                row_ids += batch["row_id"].to_list()
                categories += batch["category"].to_list()
                for text in batch["text"]:
                    scores.append(scorer.score(text))
                    bar.update()
        seconds = time.time() - started
        ranked = rank_documents(scores, categories, opts["alpha"], opts["normalize"], opts["keep_fraction"])
        self.scores = pl.DataFrame(
            {
                "row_id": row_ids,
                "longattn_tokens": [s.tokens for s in scores],
                "longattn_windows": [s.windows for s in scores],
                "longattn_ds": [s.ds for s in scores],
                "longattn_du": [s.du for s in scores],
                "longattn_score": [r.score if r else None for r in ranked],
                "_longattn_keep": [r.keep if r else False for r in ranked],
                "_longattn_detail": [
                    self._detail(s, r, c, scorer.min_tokens)
                    for s, r, c in zip(scores, ranked, categories, strict=True)
                ],
            },
            schema_overrides={"row_id": pl.Int64, **SCORE_COLUMNS},
        )
        tokens = sum(s.scored_tokens for s in scores)
        ctx.stats["longattn"] = {
            "scored": sum(r is not None for r in ranked),
            "too_short": sum(r is None for r in ranked),
            "tokens_scored": tokens,
            "tokens_per_s": round(tokens / seconds, 1) if seconds > 0 else None,
        }

    def _detail(self, score: DocScore, ranked: Ranked | None, category: str | None, min_tokens: int) -> str:
        if ranked is None:
            return f"{score.tokens} tokens < min_tokens {min_tokens}"
        fraction = self.options["keep_fraction"]
        return f"LDS {ranked.score:.3f} ranks {ranked.rank}/{ranked.of} in category {category!r} (top {fraction:.0%} kept)"

    def process(self, batch: pl.DataFrame) -> pl.DataFrame:
        if self.scores is None:
            raise CurateError("stage longattn: process() called before prepare()")
        batch = batch.drop([c for c in SCORE_COLUMNS if c in batch.columns])
        batch = batch.join(self.scores, on="row_id", how="left", maintain_order="left")
        batch = decide(batch, pl.col("longattn_score").is_null(), "too_short", pl.col("_longattn_detail"))
        batch = decide(batch, ~pl.col("_longattn_keep"), "low_long_dependency", pl.col("_longattn_detail"))
        return batch.drop("_longattn_keep", "_longattn_detail")
