"""The tasks of the dedup stages' parallel phases (StageContext.map: a local pool or Ray tasks).

They live here, not in curate/stages, so that a pool worker unpickling one imports the dedup
building blocks and curate.text only, not every stage of curate.stages (about 0.2 CPU s a worker).
Each task reads the rows its item names (an input piece and offsets in it): no text travels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from curate.dedup.lsh import TokenLists, candidate_pairs, jaccard, only_insertions
from curate.dedup.minhash import MinHasher, band_hashes
from curate.dedup.shingles import Shingles, shingle
from curate.dedup.survivors import choose, row_features
from curate.stage import InputPiece
from curate.text import content_expr, exact_key_expr, light_normalize_expr, normalize_expr


def scan_in_slices(piece: InputPiece, build: Callable[[pl.LazyFrame], pl.LazyFrame]) -> pl.DataFrame:
    """`build` over the piece's rows, in row order, computed as one slice per Polars thread at once
    (one string expression over one column runs on one thread): both cores on one piece."""
    step = -(-piece.rows // pl.thread_pool_size())
    slices = [
        build(InputPiece(piece.path, piece.offset + start, min(step, piece.rows - start)).scan())
        for start in range(0, piece.rows, step)
    ]
    return pl.concat(slices).collect() if slices else build(piece.scan()).collect()


def series_in_slices(texts: pl.Series, build: Callable[[pl.Expr], pl.Expr]) -> pl.Series:
    """`build` over the texts, in order, one slice per Polars thread at once (as scan_in_slices)."""
    frame = texts.to_frame("t").lazy()
    step = max(1, -(-len(texts) // pl.thread_pool_size()))
    slices = [frame.slice(start, step).select(build(pl.col("t"))) for start in range(0, len(texts), step)]
    return (pl.concat(slices) if slices else frame.select(build(pl.col("t")))).collect().to_series()


# -- exact_dedup -------------------------------------------------------------------------------


def key_rows(piece: InputPiece, how: tuple[str, int]) -> list[pl.DataFrame]:
    """The key rows of a piece (curate.dedup.survivors.row_features), split into `partitions` by the
    first key hash: rows of one key land in the same partition whatever piece they come from."""
    key, partitions = how

    def keys(lf: pl.LazyFrame) -> pl.LazyFrame:
        rows = row_features(lf, exact_key_expr("problem"))
        if key == "problem+response":
            rows = rows.with_columns(
                pl.col("k0") ^ pl.col("rkey").fill_null(0), pl.col("k1") + pl.col("rkey").fill_null(0)
            )
        return rows.with_columns((pl.col("k0") % partitions).alias("partition"))

    rows = scan_in_slices(piece, keys)
    split = rows.partition_by("partition", as_dict=True, include_key=False)
    return [split.get((p,), rows.clear().drop("partition")) for p in range(partitions)]


def exact_survivors(rows: pl.DataFrame, _: None) -> pl.DataFrame:
    """The decisions of one partition: the clusters of equal keys and who survives in each."""
    rows = rows.with_columns(
        pl.struct("k0", "k1").rank("dense").cast(pl.Int64).alias("cluster"),
        pl.lit(1.0).alias("similarity"),
    )
    return choose(rows, "duplicate")


# -- near_dedup --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shingling:
    """How texts become shingle sets, signatures and band hashes (shared by every task)."""

    kind: str
    size: int
    num_perm: int
    seed: int
    bands: int
    rows: int
    math_aware: bool = False  # also the content tokens (curate.text.content_expr)


def row_keys(piece: InputPiece, _: None) -> pl.DataFrame:
    """The per-row facts of one input piece (curate.dedup.survivors.row_features), in input order."""
    return scan_in_slices(piece, lambda rows: row_features(rows, normalize_expr("problem")))


def _column(item: tuple[InputPiece, np.ndarray], column: str) -> pl.Series:
    """`column` at the item's offsets (sorted, distinct) in its piece, read in a streaming scan that
    keeps only those rows: the piece's whole column (2-8 kB a trace) is never held at once."""
    piece, offsets = item
    wanted = pl.Series(offsets, dtype=pl.get_index_type())
    rows = (
        piece.scan()
        .select(column)
        .with_row_index("_offset")
        .filter(pl.col("_offset").is_in(wanted.implode()))
    )
    return rows.collect(engine="streaming").to_series(1)


def _problems(item: tuple[InputPiece, np.ndarray]) -> pl.Series:
    """The normalised problems of an item's rows (curate.text.normalize_expr)."""
    return series_in_slices(_column(item, "problem"), normalize_expr)


def sign_nodes(
    item: tuple[InputPiece, np.ndarray], how: Shingling
) -> tuple[np.ndarray, np.ndarray, Shingles, TokenLists | None]:
    """Signatures (nodes x num_perm uint32), band hashes (nodes x bands uint32), shingle sets and
    (with math_aware) content tokens of the nodes whose first rows the item names."""
    texts = _problems(item)
    sets = shingle(texts, how.size, how.kind, normalized=True)
    signatures = MinHasher(how.num_perm, how.seed).signatures(sets)
    content = None
    if how.math_aware:
        content = TokenLists.from_series(series_in_slices(texts, content_expr))
    return signatures, band_hashes(signatures, how.bands, how.rows), sets, content


def bucket_pairs(block: np.ndarray, max_bucket: int) -> np.ndarray:
    """The candidate pairs of a block of band columns (curate.dedup.lsh.candidate_pairs)."""
    return candidate_pairs(block, None, max_bucket)


def confirm_pairs(
    pairs: np.ndarray, rule: tuple[Shingles, TokenLists | None, float, float | None]
) -> np.ndarray:
    """Which candidate pairs are near-duplicates (curate.stages.near_dedup, step 4), as a mask."""
    shingles, content, threshold, containment = rule
    similar = jaccard(pairs, shingles)
    ok = similar >= threshold
    if containment is not None and len(pairs):
        sizes = shingles.sizes()
        small, large = np.minimum(sizes[pairs[:, 0]], sizes[pairs[:, 1]]), sizes[pairs].sum(axis=1)
        shared = np.rint(similar * large / (1.0 + similar))  # |A n B| from J = i / (|A| + |B| - i)
        ok |= shared >= containment * small
    if content is not None:
        ok[ok] = only_insertions(pairs[ok], content)
    return ok


def sign_responses(item: tuple[InputPiece, np.ndarray], how: Shingling) -> np.ndarray:
    """Signatures of the item's responses, compared lightly normalised and lower-cased."""
    texts = series_in_slices(_column(item, "response"), lambda t: light_normalize_expr(t).str.to_lowercase())
    return MinHasher(how.num_perm, how.seed).signatures(shingle(texts, how.size, how.kind))
