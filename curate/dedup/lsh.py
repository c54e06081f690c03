"""LSH banding, candidate confirmation and clustering, all over columnar arrays.

Banding is a sort/group of (band, band hash) rows in Polars, not a Python dict: it is the same
shuffle a distributed run does (partition by band hash). Candidate pairs are confirmed by the true
Jaccard similarity of their shingle sets, computed as a join of (pair, shingle) rows. Clusters are
the connected components of the confirmed pairs, found with an array union-find.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from curate.dedup.shingles import Shingles, join_offsets


def candidate_probability(similarity: float, bands: int, rows: int) -> float:
    """Chance that two texts of this Jaccard similarity share at least one band."""
    return 1.0 - (1.0 - similarity**rows) ** bands


def bands_for_threshold(
    threshold: float, num_perm: int, recall_at_threshold: float = 0.99
) -> tuple[int, int]:
    """(bands, rows) using at most num_perm permutations: the most rows per band (fewest false
    candidates) that still make a pair at `threshold` a candidate with `recall_at_threshold`."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
    best = (num_perm, 1)
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        if candidate_probability(threshold, bands, rows) >= recall_at_threshold:
            best = (bands, rows)
    return best


def candidate_pairs(
    band_hash: np.ndarray, eligible: np.ndarray | None = None, max_bucket: int = 64
) -> np.ndarray:
    """Unique (a, b) index pairs, a < b, of texts that share a band hash.

    One band at a time, the (hash, text) rows are sorted with Polars and cut into runs of equal
    hashes (buckets). A bucket of up to `max_bucket` texts yields all its pairs; a bigger one
    (degenerate texts that all look alike) only links consecutive members, which keeps them
    connected at linear cost.
    """
    n, bands = band_hash.shape
    index = np.arange(n, dtype=np.int64)
    if eligible is not None:
        index = index[eligible]
    found = [pl.DataFrame(schema={"a": pl.Int64, "b": pl.Int64})]
    for band in range(bands):
        members = (
            pl.DataFrame({"h": band_hash[index, band], "doc": index})
            .sort("h", "doc")
            .with_columns((pl.col("h") != pl.col("h").shift(1)).fill_null(True).cum_sum().alias("bucket"))
            .filter(pl.len().over("bucket") > 1)
            .with_columns(
                pl.len().over("bucket").alias("size"), pl.int_range(pl.len()).over("bucket").alias("pos")
            )
        )
        small = members.filter(pl.col("size") <= max_bucket)
        found.append(
            small.join(small, on="bucket", suffix="_b")
            .filter(pl.col("pos") < pl.col("pos_b"))
            .select(pl.col("doc").alias("a"), pl.col("doc_b").alias("b"))
        )
        big = members.filter(pl.col("size") > max_bucket)
        found.append(
            big.join(big.with_columns(pl.col("pos") - 1), on=["bucket", "pos"], suffix="_b").select(
                pl.col("doc").alias("a"), pl.col("doc_b").alias("b")
            )
        )
        if len(found) > 64:  # keep the list of pair frames short
            found = [pl.concat(found).unique()]
    pairs = pl.concat(found).unique().sort("a", "b")
    return np.stack([pairs["a"].to_numpy(), pairs["b"].to_numpy()], axis=1).astype(np.int64).reshape(-1, 2)


def _ragged_gather(shingles: Shingles, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index into docs, hash) of every shingle of each doc in `docs`, concatenated."""
    sizes = shingles.sizes()[docs]
    which = np.repeat(np.arange(len(docs), dtype=np.int64), sizes)
    run_start = np.repeat(np.cumsum(sizes) - sizes, sizes)
    position = np.arange(len(which), dtype=np.int64) - run_start + shingles.offsets[docs][which]
    return which, shingles.hashes[position]


def jaccard(pairs: np.ndarray, shingles: Shingles, chunk: int = 100_000) -> np.ndarray:
    """True Jaccard similarity of the shingle sets of each (a, b) pair.

    Each side's sets are laid out as (pair << 32 | hash) keys, which come out sorted (pairs in
    order, each set sorted); a set has no repeated hash, so every b key found in the a keys
    (a binary search, no sort of the two sides) is one shared shingle. Pairs go `chunk` at a time
    to bound memory."""
    sizes = shingles.sizes()
    inter = np.zeros(len(pairs), dtype=np.int64)
    for start in range(0, len(pairs), chunk):
        part = pairs[start : start + chunk]
        which_a, hashes_a = _ragged_gather(shingles, part[:, 0])
        which_b, hashes_b = _ragged_gather(shingles, part[:, 1])
        if len(hashes_a) == 0 or len(hashes_b) == 0:
            continue
        keys_a = (which_a.astype(np.uint64) << np.uint64(32)) | hashes_a.astype(np.uint64)
        keys_b = (which_b.astype(np.uint64) << np.uint64(32)) | hashes_b.astype(np.uint64)
        found = keys_a[np.minimum(np.searchsorted(keys_a, keys_b), len(keys_a) - 1)] == keys_b
        inter[start : start + len(part)] = np.bincount(which_b[found], minlength=len(part))
    union = sizes[pairs[:, 0]] + sizes[pairs[:, 1]] - inter if len(pairs) else inter
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


@dataclass
class TokenLists:
    """Token sequences of n texts (e.g. their content tokens), as 64-bit hashes in text order.

    Text i owns values[offsets[i]:offsets[i + 1]]."""

    offsets: np.ndarray
    values: np.ndarray

    @classmethod
    def from_series(cls, tokens: pl.Series) -> TokenLists:
        """From a list[str] column (curate.text.content_expr)."""
        lengths = tokens.list.len().fill_null(0).to_numpy().astype(np.int64)
        values = tokens.explode().drop_nulls().hash(11).to_numpy()
        return cls(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64), values)

    @classmethod
    def concat(cls, parts: list[TokenLists]) -> TokenLists:
        return cls(
            join_offsets([p.offsets for p in parts]), np.concatenate([p.values for p in parts] or [[]])
        )

    def of(self, index: int) -> list[int]:
        return self.values[self.offsets[index] : self.offsets[index + 1]].tolist()


def is_subsequence(short: list, long: list) -> bool:
    remaining = iter(long)
    return all(item in remaining for item in short)


def only_insertions(pairs: np.ndarray, tokens: TokenLists) -> np.ndarray:
    """Per pair: True when one text's tokens, in order, are a subsequence of the other's.

    A dropped sentence, a prefix or an appended instruction only adds or removes tokens; a changed
    number, word or relation leaves each text with a token the other lacks, and in a math problem
    that makes a different problem ("k < 0" and "k > 0", "the center" and "the radius").
    """
    out = np.zeros(len(pairs), dtype=bool)
    for k, (a, b) in enumerate(pairs.tolist()):
        first, second = tokens.of(a), tokens.of(b)
        if len(first) > len(second):
            first, second = second, first
        out[k] = is_subsequence(first, second)
    return out


def union_find(n: int, pairs: np.ndarray) -> np.ndarray:
    """Component label (the smallest member index) of each of n items joined by `pairs`.

    Array union-find: hook every edge's larger root under its smaller root, then compress paths
    by pointer jumping, until no edge joins two roots. Each round is a few numpy passes.
    """
    parent = np.arange(n, dtype=np.int64)
    if len(pairs) == 0:
        return parent
    a, b = pairs[:, 0], pairs[:, 1]
    while True:
        root_a, root_b = parent[a], parent[b]
        differ = root_a != root_b
        if not differ.any():
            return parent
        low = np.minimum(root_a[differ], root_b[differ])
        high = np.maximum(root_a[differ], root_b[differ])
        np.minimum.at(parent, high, low)
        while True:  # pointer jumping until every item points at a root
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
