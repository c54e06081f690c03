"""Which rows of a duplicate cluster survive: the representative, and every distinct trace.

Verification runs after dedup, so the ranking (RANK_KEYS, used by both dedup stages) is what is
known at dedup time:

1. a row that can be verified (it has a response and a reference or tests) beats one that cannot;
2. a row with a response beats a bare prompt;
3. the longest normalised problem wins (a complete statement beats a truncated copy);
4. the lowest row_id wins (input order: list your preferred source first).

The top-ranked row is the representative. Walking down the ranking, a row is dropped as a
duplicate when it is a bare prompt (the cluster is already covered) or when its response is
identical (exact_dedup) or near-identical (near_dedup) to a response already kept. Every other
trace is kept: dedup never caps how many traces a problem has (that would choose by input order,
before anything is verified); the cap is select's `max_per_problem`, after verification.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from curate.text import light_normalize_expr

# Given one cluster's responded row_ids in rank order: which repeat an earlier kept response.
NearIdentical = Callable[[np.ndarray], np.ndarray]

MAX_TRACES_REMOVED = (
    "dedup no longer caps traces per problem (it chose by input order, before verify); "
    "use select: {max_per_problem: N}, which prefers passing traces"
)

# Rows per batch of a dedup stage's process(), which is one join against the decisions: at the
# runner's default (curate.stage.BATCH_ROWS) the per-batch overhead took twice the CPU.
JOIN_BATCH_ROWS = 8192

# The representative ranking, best first: (column, descending).
RANK_KEYS = (("verifiable", True), ("has_response", True), ("plen", True), ("row_id", False))


def rank_sort(frame: pl.DataFrame, within: str | None = None) -> pl.DataFrame:
    """`frame` sorted best first by RANK_KEYS (grouped by `within` first, when given)."""
    keys = ([(within, False)] if within else []) + list(RANK_KEYS)
    return frame.sort([k for k, _ in keys], descending=[d for _, d in keys])


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
    rows: pl.DataFrame, duplicate_reason: str, near_identical: NearIdentical | None = None
) -> pl.DataFrame:
    """Decide every row of `rows` (row_id, id, cluster, similarity, rkey, has_response, verifiable,
    plen). Returns one line per row of a cluster with more than one row: row_id, id, cluster_id,
    representative_row_id, representative_id, similarity, kept, reason, detail."""
    ranked = rank_sort(rows.filter(pl.len().over("cluster") > 1), within="cluster").with_columns(
        pl.col("row_id").min().over("cluster").alias("cluster_id"),
        pl.col("row_id").first().over("cluster").alias("representative_row_id"),
        pl.col("id").first().over("cluster").alias("representative_id"),
        (pl.int_range(pl.len()).over("cluster") == 0).alias("is_rep"),
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
    rep = pl.format("row {} (id {})", "representative_row_id", "representative_id")
    return ranked.select(
        "row_id",
        "id",
        "cluster_id",
        "representative_row_id",
        "representative_id",
        "similarity",
        (~pl.col("duplicate")).alias("kept"),
        pl.when(pl.col("duplicate")).then(pl.lit(duplicate_reason)).alias("reason"),
        pl.when(pl.col("duplicate"))
        .then(pl.format("duplicate of {}, similarity {}", rep, pl.col("similarity").round(3)))
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
