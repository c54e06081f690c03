"""MinHash signatures for many texts at once, and their LSH band hashes.

Signatures are rensa's RMinHash (Rust): one call signs a whole batch from the flat shingle buffer
and its row offsets (curate.dedup.shingles), about 4x faster than the numpy affine permutations
used before, at the same candidate recall and estimate error (bench/minhash_bench.py). A signature
depends only on the text's shingle set, `num_perm` and `seed` (not on the batch it is signed in)
and on rensa's algorithm version, which `ALGORITHM` names for stage fingerprints.
"""

from __future__ import annotations

import numpy as np
from rensa import RMinHash

from curate.dedup.shingles import Shingles, fmix64

EMPTY = np.uint32(0xFFFFFFFF)  # the signature value of a text with no shingle
ALGORITHM = f"rensa RMinHash v{RMinHash.ALGORITHM_VERSION}"
_ROW_MULTIPLIERS = fmix64(np.arange(1, 65, dtype=np.uint64)) | np.uint64(1)


class MinHasher:
    """Signatures of `num_perm` permutations for `seed` (rensa RMinHash)."""

    def __init__(self, num_perm: int = 128, seed: int = 1):
        self.num_perm, self.seed = num_perm, seed

    def signatures(self, shingles: Shingles) -> np.ndarray:
        """(texts x num_perm) uint32; a text without shingles gets all EMPTY."""
        if len(shingles) == 0:
            return np.full((0, self.num_perm), EMPTY, dtype=np.uint32)
        matrix = RMinHash.digest_matrix_from_flat_token_hashes(
            shingles.hashes.astype(np.uint64), shingles.offsets.astype(np.uint64), self.num_perm, self.seed
        )
        out = np.asarray(matrix.to_rows(), dtype=np.uint32).reshape(len(shingles), self.num_perm)
        out[shingles.sizes() == 0] = EMPTY  # rensa gives the same; said here, as band hashing relies on it
        return out


def band_hashes(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(texts x bands) uint32: one hash of each band's `rows` signature values.

    32 bits keep the banding table small; a chance collision only adds a candidate pair, which
    the true-Jaccard check then rejects."""
    if bands * rows > signatures.shape[1]:
        raise ValueError(
            f"{bands} bands x {rows} rows need {bands * rows} permutations, have {signatures.shape[1]}"
        )
    if rows > len(_ROW_MULTIPLIERS):
        raise ValueError(f"at most {len(_ROW_MULTIPLIERS)} rows per band")
    cube = signatures[:, : bands * rows].reshape(len(signatures), bands, rows).astype(np.uint64)
    with np.errstate(over="ignore"):
        combined = (cube * _ROW_MULTIPLIERS[:rows]).sum(axis=2, dtype=np.uint64)
        return (fmix64(combined + np.uint64(rows)) >> np.uint64(32)).astype(np.uint32)


def estimated_jaccard(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise fraction of equal signature values (the MinHash estimate of Jaccard similarity)."""
    return (a == b).mean(axis=-1)
