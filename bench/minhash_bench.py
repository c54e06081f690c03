"""MinHash signatures: distillery's (rensa's Rust RMinHash, curate.dedup.minhash, since issue 19)
against the numpy signatures it used before (datasketch's affine32 permutations, vectorised, kept
here as the baseline) and datasketch's own `MinHash.update_batch`, on the same shingle hashes of
the dedup bench's corpus.

    .venv-bench/bin/python bench/minhash_bench.py                  # 110k docs (the dedup speed corpus)
    .venv-bench/bin/python bench/minhash_bench.py --docs 20000

Every tool gets the same input: the 5-token shingle hashes near_dedup computes for each normalised
problem (curate.text, curate.dedup.shingles), as one flat buffer with row offsets. Timed: signatures
only. Quality, the same for all: of the pairs inside one labelled duplicate group whose true
Jaccard similarity is >= the threshold, the share that LSH (near_dedup's bands for that threshold)
makes candidates (candidate recall: near_dedup confirms every candidate with the true Jaccard, so
this is what a signature decides), and the mean absolute error of the estimated Jaccard on them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere: import this checkout's packages

from bench.dedup_bench import NUM_PERM, SHINGLE_SIZE, build_corpus  # noqa: E402
from curate.dedup.lsh import bands_for_threshold, candidate_pairs, jaccard  # noqa: E402
from curate.dedup.minhash import MinHasher, band_hashes, estimated_jaccard  # noqa: E402
from curate.dedup.shingles import Shingles, shingle  # noqa: E402
from curate.text import normalize_expr  # noqa: E402

THRESHOLD = 0.8
SEED = 1


def ours(shingles: Shingles) -> np.ndarray:
    return MinHasher(NUM_PERM, SEED).signatures(shingles)


def _fmix32(values: np.ndarray) -> np.ndarray:
    values = values ^ (values >> np.uint32(16))
    values = values * np.uint32(0x85EBCA6B)
    values = values ^ (values >> np.uint32(13))
    values = values * np.uint32(0xC2B2AE35)
    return values ^ (values >> np.uint32(16))


def numpy_affine32(shingles: Shingles) -> np.ndarray:
    """The signatures near_dedup computed before rensa: datasketch's affine32 permutations as one
    (shingles x permutations) numpy product per 8M cells and a `minimum.reduceat` per text."""
    from datasketch import MinHash

    a, b = (np.asarray(p, dtype=np.uint32) for p in MinHash(NUM_PERM, SEED, scheme="affine32").permutations)
    n, sizes, mixed = len(shingles), shingles.sizes(), _fmix32(shingles.hashes)
    out = np.full((n, NUM_PERM), 0xFFFFFFFF, dtype=np.uint32)
    per_chunk, first = max(1, (1 << 23) // NUM_PERM), 0
    while first < n:
        limit = shingles.offsets[first] + per_chunk
        last = min(n, max(first + 1, int(np.searchsorted(shingles.offsets, limit, side="right")) - 1))
        lo, hi = shingles.offsets[first], shingles.offsets[last]
        if hi > lo:
            with np.errstate(over="ignore"):
                permuted = mixed[lo:hi, None] * a[None, :] + b[None, :]
            present = np.nonzero(sizes[first:last])[0] + first
            out[present] = np.minimum.reduceat(permuted, shingles.offsets[present] - lo, axis=0)
        first = last
    return out


def datasketch_signatures(shingles: Shingles) -> np.ndarray:
    """datasketch's documented path, one MinHash per document (the permutations built once)."""
    from datasketch import MinHash

    permutations = MinHash(num_perm=NUM_PERM, seed=SEED, scheme="affine32").permutations
    out = np.empty((len(shingles), NUM_PERM), dtype=np.uint32)
    for i in range(len(shingles)):
        sketch = MinHash(num_perm=NUM_PERM, seed=SEED, scheme="affine32", permutations=permutations)
        sketch.update_batch([int(h).to_bytes(4, "little") for h in shingles.of(i)])
        out[i] = sketch.hashvalues
    return out


def true_pairs(docs: list[dict], shingles: Shingles) -> np.ndarray:
    """Pairs of one labelled group whose true Jaccard similarity is >= THRESHOLD."""
    groups = pl.DataFrame({"group": [d["group"] for d in docs]}).with_row_index("doc")
    pairs = (
        groups.join(groups, on="group", suffix="_b")
        .filter(pl.col("doc") < pl.col("doc_b"))
        .select(pl.col("doc").cast(pl.Int64), pl.col("doc_b").cast(pl.Int64))
        .to_numpy()
    )
    return pairs[jaccard(pairs, shingles) >= THRESHOLD]


def quality(signatures: np.ndarray, truth: np.ndarray, shingles: Shingles) -> tuple[float, float]:
    bands, rows = bands_for_threshold(THRESHOLD, NUM_PERM)
    found = candidate_pairs(band_hashes(signatures, bands, rows))
    found_keys = set(map(tuple, found.tolist()))
    recall = sum((a, b) in found_keys for a, b in truth.tolist()) / max(len(truth), 1)
    error = np.abs(
        estimated_jaccard(signatures[truth[:, 0]], signatures[truth[:, 1]]) - jaccard(truth, shingles)
    )
    return recall, float(error.mean())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=110_000, help="corpus size (dedup bench's speed corpus)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per tool (best is shown)")
    args = parser.parse_args()

    docs = []
    copies = 0.7
    while len(docs) < args.docs:  # as the dedup bench's speed corpus: more copies until it is big enough
        docs = build_corpus(copies=copies, changed=0.25)
        copies *= 2
    docs = docs[: args.docs]
    texts = pl.DataFrame({"t": [d["text"] for d in docs]}).select(normalize_expr("t"))["t"]
    shingles = shingle(texts, SHINGLE_SIZE)
    truth = true_pairs(docs, shingles)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"{len(docs):,} docs, {len(shingles.hashes):,} shingles, {len(truth):,} labelled pairs >= {THRESHOLD}"
    )

    tools = {"distillery (rensa RMinHash)": ours, "numpy affine32 (before)": numpy_affine32}
    results = {}
    for name, fn in tools.items():
        fn(Shingles(shingles.offsets[:2], shingles.hashes[: shingles.offsets[1]]))  # imports, set-up
        best = float("inf")
        for _ in range(args.repeat):
            started = time.perf_counter()
            signatures = fn(shingles)
            best = min(best, time.perf_counter() - started)
        results[name] = (best, *quality(signatures, truth, shingles))
    sample = min(len(docs), 5000)  # datasketch is per-document Python: timed on a sample, scaled
    started = time.perf_counter()
    datasketch_signatures(
        Shingles(shingles.offsets[: sample + 1], shingles.hashes[: shingles.offsets[sample]])
    )
    results["datasketch update_batch"] = ((time.perf_counter() - started) * len(docs) / sample, None, None)

    base = results["distillery (rensa RMinHash)"][0]
    print(
        f"\n{'tool':<26} {'seconds':>8} {'docs/s':>10} {'vs ours':>8} {'cand. recall':>13} {'|est-J| mean':>13}"
    )
    for name, (seconds, recall, error) in results.items():
        extra = f"{recall:>13.4f} {error:>13.4f}" if recall is not None else f"{'-':>13} {'-':>13}"
        print(f"{name:<26} {seconds:>8.2f} {len(docs) / seconds:>10,.0f} {base / seconds:>7.2f}x {extra}")


if __name__ == "__main__":
    main()
