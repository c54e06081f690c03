"""Which rows of a cluster survive: the representative first, then up to K distinct traces.

Verification runs after dedup, so the ranking uses what is known at dedup time:

1. a row that can be verified (it has a response and a reference or tests) beats one that cannot;
2. a row with a response beats a bare prompt;
3. the longest normalised problem wins (a complete statement beats a truncated copy);
4. the lowest row_id wins (input order: list your preferred source first).

The top-ranked row is the representative. Walking down the ranking, a row is dropped as a
duplicate when it is a bare prompt (the cluster is already covered) or when its response is
identical (exact_dedup) or near-identical (near_dedup) to a response already kept; the remaining
rows are kept until the cluster holds `max_traces` of them, and the rest are dropped as extra traces.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from curate.stage import decide, keep
from curate.text import light_normalize_expr

EXTRA_TRACE = "extra_trace"
# Given one cluster's responded row_ids in rank order: which repeat an earlier kept response.
NearIdentical = Callable[[np.ndarray], np.ndarray]

RANK_ORDER = (["cluster", "verifiable", "has_response", "plen", "row_id"], [False, True, True, True, False])


def row_features(lf: pl.LazyFrame, problem_key: pl.Expr) -> pl.LazyFrame:
    """The per-row facts dedup needs, computed lazily so that no text is materialised: k0, k1
    (two 64-bit hashes of `problem_key`, an expression of the problem column), plen (its length),
    rkey (hash of the response), has_response, verifiable."""
    has_response = pl.col("response").is_not_null() & (pl.col("response").str.strip_chars() != "")
    return (
        lf.select(
            "row_id",
            "id",
            problem_key.alias("norm"),
            pl.when(has_response).then(light_normalize_expr("response").hash(7)).alias("rkey"),
            has_response.alias("has_response"),
            (has_response & (pl.col("reference").is_not_null() | pl.col("tests").is_not_null())).alias(
                "verifiable"
            ),
        )
        .with_columns(
            pl.col("norm").hash(0).alias("k0"),
            pl.col("norm").hash(1).alias("k1"),
            pl.col("norm").str.len_chars().fill_null(0).alias("plen"),
        )
        .drop("norm")
    )


def choose(
    rows: pl.DataFrame,
    max_traces: int,
    duplicate_reason: str,
    near_identical: NearIdentical | None = None,
) -> pl.DataFrame:
    """Decide every row of `rows` (row_id, id, cluster, similarity, rkey, has_response, verifiable,
    plen). Returns one line per row of a cluster with more than one row: row_id, id, cluster_id,
    representative_row_id, representative_id, similarity, kept, reason, detail."""
    by, descending = RANK_ORDER
    ranked = (
        rows.filter(pl.len().over("cluster") > 1)
        .sort(by, descending=descending)
        .with_columns(
            pl.col("row_id").min().over("cluster").alias("cluster_id"),
            pl.col("row_id").first().over("cluster").alias("representative_row_id"),
            pl.col("id").first().over("cluster").alias("representative_id"),
            (pl.int_range(pl.len()).over("cluster") == 0).alias("is_rep"),
        )
    )
    bare_repeat = ~pl.col("has_response") & ~pl.col("is_rep")
    same_response = (
        pl.col("has_response")
        & pl.col("rkey").is_duplicated().over("cluster")
        & (pl.int_range(pl.len()).over("cluster", "rkey") > 0)
    )
    ranked = ranked.with_columns((bare_repeat | same_response.fill_null(False)).alias("duplicate"))
    if near_identical is not None:
        ranked = ranked.with_columns(_near_repeats(ranked, near_identical).alias("duplicate"))
    ranked = ranked.with_columns(
        (
            pl.when(~pl.col("duplicate")).then(pl.int_range(pl.len()).over("cluster", "duplicate"))
            >= max_traces
        )
        .fill_null(False)
        .alias("extra")
    )
    rep = pl.format("row {} (id {})", "representative_row_id", "representative_id")
    return ranked.select(
        "row_id",
        "id",
        "cluster_id",
        "representative_row_id",
        "representative_id",
        "similarity",
        (~pl.col("duplicate") & ~pl.col("extra")).alias("kept"),
        pl.when(pl.col("duplicate"))
        .then(pl.lit(duplicate_reason))
        .when(pl.col("extra"))
        .then(pl.lit(EXTRA_TRACE))
        .alias("reason"),
        pl.when(pl.col("duplicate"))
        .then(pl.format("duplicate of {}, similarity {}", rep, pl.col("similarity").round(3)))
        .when(pl.col("extra"))
        .then(
            pl.format(
                "the problem's cluster already keeps {} traces (representative {})", pl.lit(max_traces), rep
            )
        )
        .alias("detail"),
    )


def _near_repeats(ranked: pl.DataFrame, near_identical: NearIdentical) -> pl.Series:
    """`duplicate`, extended with responses near-identical to an earlier kept one of the cluster."""
    duplicate = ranked["duplicate"].to_numpy().copy()
    row_ids = ranked["row_id"].to_numpy()
    candidates = ranked.with_row_index("pos").filter(pl.col("has_response") & ~pl.col("duplicate"))
    multi = candidates.filter(pl.len().over("cluster") > 1)
    for positions in multi.group_by("cluster", maintain_order=True).agg("pos")["pos"].to_list():
        positions = np.asarray(positions, dtype=np.int64)
        duplicate[positions[near_identical(row_ids[positions])]] = True
    return pl.Series("duplicate", duplicate)


def apply_decisions(batch: pl.DataFrame, decisions: pl.DataFrame) -> pl.DataFrame:
    """The batch with the `reason`/`detail` of its dropped rows.

    decisions: row_id, reason, detail, sorted by row_id; only the slice covering the batch's
    row_id range is joined, so a batch does not pay for the whole table."""
    if batch.height and decisions.height:
        ids = decisions["row_id"]
        lo = ids.search_sorted(batch["row_id"].min(), side="left")
        hi = ids.search_sorted(batch["row_id"].max(), side="right")
        decisions = decisions.slice(lo, hi - lo)
    joined = batch.join(
        decisions.select(
            "row_id", pl.col("reason").alias("_dedup_reason"), pl.col("detail").alias("_dedup_detail")
        ),
        on="row_id",
        how="left",
        maintain_order="left",
    )
    out = keep(joined)
    for reason in sorted(decisions["reason"].unique().drop_nulls().to_list()):
        out = decide(out, pl.col("_dedup_reason") == reason, reason, pl.col("_dedup_detail"))
    return out.drop("_dedup_reason", "_dedup_detail")
