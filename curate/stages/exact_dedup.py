"""exact_dedup: rows whose problems are equal after comparison normalisation form one cluster.

The key is the normalised problem (curate.text: NFKC, case, quotes, LaTeX spellings, generic
instruction prefixes/suffixes, spacing), or with `key: problem+response` the problem and the
response together. In a cluster the representative and every trace with a distinct response
survive (curate.dedup.survivors); identical responses and bare prompt copies are dropped as
`duplicate`. How many traces a problem keeps is decided after verification, by select's
`max_per_problem`. Every member of a cluster of two or more rows gets a line in the `clusters` view.

Shuffle: by content-hash partition. The input is cut into pieces (StageContext.map, one task
each): a piece's key rows (row_id, id, the two 64-bit hashes, the ranking facts) are split into
partitions by the first hash, so the rows of one key all meet in one partition; each partition
chooses its survivors on its own (a second map), and the decisions are concatenated. Inside a
task the key expressions run over one slice of the piece per Polars thread at once
(curate.dedup.tasks.scan_in_slices), so one piece uses both cores. The output
does not depend on how many pieces or partitions there are.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from curate.dedup.survivors import JOIN_BATCH_ROWS, MAX_TRACES_REMOVED
from curate.dedup.tasks import exact_survivors, key_rows
from curate.stage import Stage, StageContext, apply_decisions

KEYS = ("problem", "problem+response")
PIECE_ROWS = 250_000  # rows per key task; as many partitions as pieces


class ExactDedup(Stage):
    name = "exact_dedup"
    version = "1"
    defaults: dict[str, Any] = {"key": "problem"}
    choices = {"key": KEYS}
    removed = {"max_traces": MAX_TRACES_REMOVED}
    parallel = False  # process() is a join against the decisions; a worker pool would only add copying
    batch_rows = JOIN_BATCH_ROWS
    side_tables = ("clusters",)

    def __init__(self, **options: Any):
        super().__init__(**options)
        self.drops = pl.DataFrame()

    def fingerprint(self) -> dict[str, Any]:
        # Keys are Polars hashes, stable for one Polars version: a new version recomputes the stage.
        return {**super().fingerprint(), "polars": pl.__version__}

    def prepare(self, ctx: StageContext) -> None:
        pieces = ctx.input_pieces(PIECE_ROWS)
        if not pieces:
            ctx.scan()  # raises: no input rows
        partitions: list[list[pl.DataFrame]] = [[] for _ in pieces]
        for split in ctx.map(key_rows, pieces, (self.options["key"], len(pieces))):
            for bucket, rows in zip(partitions, split, strict=True):
                bucket.append(rows)
        decided = ctx.map(exact_survivors, (pl.concat(bucket) for bucket in partitions))
        lineage = pl.concat(decided).sort("row_id")
        # The side table is written now, so the stage keeps only the drops: they are all that
        # process() needs, and all that an engine ships to its batch tasks.
        ctx.write_side_table("clusters", lineage.with_columns(pl.lit(self.name).alias("stage")))
        self.drops = lineage.filter(~pl.col("kept")).select("row_id", "reason", "detail")  # by row_id
        ctx.stats["clusters"] = lineage["cluster_id"].n_unique()
        ctx.stats["clustered_rows"] = lineage.height

    def process(self, batch: pl.DataFrame) -> pl.DataFrame:
        return apply_decisions(batch, self.drops)
