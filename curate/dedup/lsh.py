"""LSH banding, candidate confirmation and clustering, all over columnar arrays.

Banding is a sort of each band's hashes and a cut into runs (buckets), all in numpy, not a Python
dict: it is the same shuffle a distributed run does (partition by band, then by band hash). Candidate pairs are confirmed by the true
Jaccard similarity of their shingle sets, computed as a join of (pair, shingle) rows. Clusters are
the connected components of the confirmed pairs, found with an array union-find.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from curate.dedup.shingles import Shingles, join_offsets, ragged_take


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
    """Unique (a, b) index pairs, a < b, sorted, of texts that share a band hash.

    One band (column) at a time, the texts are sorted by hash (a stable sort, so by index within
    a hash) and cut into runs of equal hashes (buckets). A bucket of up to `max_bucket` texts
    yields all its pairs; a bigger one (degenerate texts that all look alike) only links
    consecutive members, which keeps them connected at linear cost. The bands are independent:
    a block of bands can be bucketed anywhere and the blocks' pairs merged (merge_pairs).
    """
    n, bands = band_hash.shape
    index = np.arange(n, dtype=np.int64)
    if eligible is not None:
        index = index[eligible]
    found = []
    for band in range(bands):
        hashes = band_hash[index, band]
        order = np.argsort(hashes, kind="stable")
        start = np.flatnonzero(np.concatenate([[True], hashes[order][1:] != hashes[order][:-1]]))
        size = np.diff(np.append(start, len(order)))
        first, second = _bucket_pairs(start, size, max_bucket)
        found.append(pair_keys(index[order][first], index[order][second], n))
    return keys_to_pairs(np.unique(np.concatenate(found or [np.zeros(0, np.int64)])), n)


def _bucket_pairs(start: np.ndarray, size: np.ndarray, max_bucket: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions (in the sorted order) of the pairs of each bucket: all pairs of a small bucket,
    neighbours in a big one. Built with repeat/cumsum, no loop over buckets."""
    small = (size > 1) & (size <= max_bucket)
    member = _ranges(start[small], size[small])  # every position of a small bucket
    later = np.repeat(start[small] + size[small], size[small]) - member - 1  # members after it
    first = np.repeat(member, later)
    second = first + 1 + _ranges(np.zeros(len(later), np.int64), later)
    big = size > max_bucket
    neighbour = _ranges(start[big], size[big] - 1)
    return np.concatenate([first, neighbour]), np.concatenate([second, neighbour + 1])


def _ranges(start: np.ndarray, length: np.ndarray) -> np.ndarray:
    """start[i], start[i] + 1, ..., start[i] + length[i] - 1 for every i, concatenated."""
    length = length.astype(np.int64)
    total = int(length.sum())
    offsets = np.repeat(np.cumsum(length) - length, length)
    return np.repeat(start.astype(np.int64), length) + np.arange(total, dtype=np.int64) - offsets


def pair_keys(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """One int64 per pair (a * n + b): sorts as (a, b) and dedups with np.unique."""
    return a.astype(np.int64) * n + b.astype(np.int64)


def keys_to_pairs(keys: np.ndarray, n: int) -> np.ndarray:
    return np.stack([keys // n, keys % n], axis=1).astype(np.int64).reshape(-1, 2)


def merge_pairs(parts: list[np.ndarray], n: int) -> np.ndarray:
    """The sorted union of several (a, b) pair arrays over n items."""
    keys = [pair_keys(p[:, 0], p[:, 1], n) for p in parts]
    return keys_to_pairs(np.unique(np.concatenate(keys or [np.zeros(0, np.int64)])), n)


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

    def take(self, index: np.ndarray) -> TokenLists:
        """The sequences of texts `index`, in that order."""
        return TokenLists(*ragged_take(self.offsets, self.values, index))

    def of(self, index: int) -> list[int]:
        return self.values[self.offsets[index] : self.offsets[index + 1]].tolist()


def is_subsequence(short: list, long: list) -> bool:
    remaining = iter(long)
    return all(item in remaining for item in short)


def only_insertions(pairs: np.ndarray, tokens: TokenLists, chunk: int = 50_000) -> np.ndarray:
    """Per pair: True when one text's tokens, in order, are a subsequence of the other's.

    A dropped sentence, a prefix or an appended instruction only adds or removes tokens; a changed
    number, word or relation leaves each text with a token the other lacks, and in a math problem
    that makes a different problem ("k < 0" and "k > 0", "the center" and "the radius").

    Most pairs are settled in numpy (`chunk` pairs at a time): when the shorter list's common
    prefix and common suffix with the longer one cover it, it is a subsequence (its head is the
    longer one's head, its tail the longer one's tail); when they do not and both have the same
    length, it is not. Only the other pairs (tokens inserted in the middle) walk in Python.
    """
    out = np.zeros(len(pairs), dtype=bool)
    for start in range(0, len(pairs), chunk):
        part = pairs[start : start + chunk]
        decided, result = _ends_cover(part, tokens)
        out[start : start + len(part)] = result
        for k in np.flatnonzero(~decided).tolist():
            first, second = tokens.of(int(part[k, 0])), tokens.of(int(part[k, 1]))
            if len(first) > len(second):
                first, second = second, first
            out[start + k] = is_subsequence(first, second)
    return out


def _ends_cover(pairs: np.ndarray, tokens: TokenLists) -> tuple[np.ndarray, np.ndarray]:
    """(decided, result) per pair, from the common prefix and suffix (only_insertions)."""
    sizes = np.diff(tokens.offsets)
    swap = sizes[pairs[:, 0]] > sizes[pairs[:, 1]]
    short, long = np.where(swap, pairs[:, 1], pairs[:, 0]), np.where(swap, pairs[:, 0], pairs[:, 1])
    n_short, n_long = sizes[short], sizes[long]
    owner = np.repeat(np.arange(len(pairs), dtype=np.int64), n_short)
    position = _ranges(np.zeros(len(pairs), np.int64), n_short)  # 0..n_short-1 of every pair
    values = tokens.values[tokens.offsets[short][owner] + position]
    head = tokens.values[tokens.offsets[long][owner] + position]
    tail = tokens.values[tokens.offsets[long][owner] + (n_long - n_short)[owner] + position]
    prefix = n_short.copy()  # first position where the head differs, per pair
    differ = values != head
    np.minimum.at(prefix, owner[differ], position[differ])
    last = np.full(len(pairs), -1, dtype=np.int64)  # last position where the tail differs
    differ = values != tail
    np.maximum.at(last, owner[differ], position[differ])
    covered = prefix + (n_short - 1 - last) >= n_short
    return covered | (n_short == n_long), covered


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
