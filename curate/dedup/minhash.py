"""MinHash signatures for many texts at once, and their LSH band hashes.

The permutations are datasketch's "affine32" scheme (`MinHash(num_perm, seed, scheme="affine32")`):
each shingle hash is pre-mixed with MurmurHash3's 32-bit finaliser, then permuted as
`a * h + b mod 2**32`. Applying that to a whole batch is one (shingles x permutations) numpy
product and a `minimum.reduceat` per text, so a signature equals what `MinHash.update_batch` gives
for the same hashes (a test checks it), without datasketch's per-shingle Python call.
"""

from __future__ import annotations

import numpy as np

from curate.dedup.shingles import Shingles, fmix64

EMPTY = np.uint32(0xFFFFFFFF)  # the signature value of a text with no shingle
_CHUNK_CELLS = 1 << 23  # shingles x permutations per numpy product (32 MiB of uint32)
_ROW_MULTIPLIERS = fmix64(np.arange(1, 65, dtype=np.uint64)) | np.uint64(1)


def fmix32(values: np.ndarray) -> np.ndarray:
    values = values ^ (values >> np.uint32(16))
    values = values * np.uint32(0x85EBCA6B)
    values = values ^ (values >> np.uint32(13))
    values = values * np.uint32(0xC2B2AE35)
    return values ^ (values >> np.uint32(16))


class MinHasher:
    """Signatures of `num_perm` permutations with datasketch's affine32 parameters for `seed`."""

    def __init__(self, num_perm: int = 128, seed: int = 1):
        from datasketch import MinHash  # imported here: datasketch pulls in scipy, slow to import

        self.num_perm, self.seed = num_perm, seed
        a, b = MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations
        self.a = np.asarray(a, dtype=np.uint32)
        self.b = np.asarray(b, dtype=np.uint32)

    def signatures(self, shingles: Shingles) -> np.ndarray:
        """(texts x num_perm) uint32; a text without shingles gets all EMPTY."""
        n = len(shingles)
        out = np.full((n, self.num_perm), EMPTY, dtype=np.uint32)
        sizes = shingles.sizes()
        mixed = fmix32(shingles.hashes)
        per_chunk = max(1, _CHUNK_CELLS // self.num_perm)
        first = 0
        while first < n:
            # texts [first, last) whose shingles fit one chunk (at least one text per chunk)
            limit = shingles.offsets[first] + per_chunk
            last = max(first + 1, int(np.searchsorted(shingles.offsets, limit, side="right")) - 1)
            last = min(last, n)
            lo, hi = shingles.offsets[first], shingles.offsets[last]
            if hi > lo:
                permuted = np.empty((hi - lo, self.num_perm), dtype=np.uint32)
                with np.errstate(over="ignore"):  # wrapping is the mod 2**32 of the permutation
                    np.multiply(mixed[lo:hi, None], self.a[None, :], out=permuted)
                    np.add(permuted, self.b[None, :], out=permuted)
                present = np.nonzero(sizes[first:last])[0] + first
                out[present] = np.minimum.reduceat(permuted, shingles.offsets[present] - lo, axis=0)
            first = last
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
