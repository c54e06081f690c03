"""Near-duplicate detection building blocks: shingles, MinHash signatures, LSH banding,
true-Jaccard confirmation and union-find clustering (used by the near_dedup stage)."""

from curate.dedup.lsh import bands_for_threshold, candidate_pairs, jaccard, only_insertions, union_find
from curate.dedup.minhash import MinHasher, band_hashes, estimated_jaccard
from curate.dedup.shingles import Shingles, shingle

__all__ = [
    "MinHasher",
    "Shingles",
    "band_hashes",
    "bands_for_threshold",
    "candidate_pairs",
    "estimated_jaccard",
    "jaccard",
    "only_insertions",
    "shingle",
    "union_find",
]
