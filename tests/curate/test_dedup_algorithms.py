"""The near-dedup building blocks: shingles, MinHash (rensa), banding, Jaccard, union-find."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest

from curate.dedup import (
    MinHasher,
    band_hashes,
    bands_for_threshold,
    candidate_pairs,
    estimated_jaccard,
    jaccard,
    shingle,
    union_find,
)
from curate.dedup.lsh import TokenLists, candidate_probability, merge_pairs, only_insertions
from curate.dedup.minhash import EMPTY
from curate.dedup.shingles import Shingles, ngram_hashes
from curate.text import normalize_expr


def random_texts(count: int, seed: int = 0) -> pl.Series:
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(40)]
    return pl.Series([" ".join(rng.choice(words, size=rng.integers(1, 60))) for _ in range(count)])


def test_shingles_are_sets_of_ordered_ngrams():
    sets = shingle(pl.Series(["a b c d", "d c b a", "a b c d a b c", "x y", "", None]), size=3)
    assert list(sets.sizes()) == [2, 2, 4, 1, 0, 0]  # "x y" is shorter than 3: one shingle of all of it
    assert set(sets.of(0)) & set(sets.of(1)) == set()  # order matters
    assert set(sets.of(0)) <= set(sets.of(2))
    for i in range(len(sets)):
        assert np.all(np.diff(sets.of(i).astype(np.int64)) > 0)  # sorted, unique


def test_ngram_positions_point_at_the_words():
    owner, pos, _ = ngram_hashes(pl.Series(["a b c", "d"]), size=2, kind="word")
    assert owner.tolist() == [0, 0, 1] and pos.tolist() == [0, 1, 0]


def test_signatures_depend_on_the_shingle_set_alone():
    """A text's signature is the same whatever batch it is signed in and whatever its order of
    shingles; a text without shingles is all EMPTY; the seed changes the permutations."""
    sets = shingle(pl.concat([random_texts(30), pl.Series([None, "solo"])]), size=3)
    hasher = MinHasher(num_perm=64, seed=7)
    signatures = hasher.signatures(sets)
    assert signatures.shape == (32, 64) and signatures.dtype == np.uint32
    assert np.all(signatures[30] == EMPTY) and not np.any(signatures[31] == EMPTY)
    for i in (0, 17, 31):
        shuffled = sets.of(i)[::-1].copy()
        alone = Shingles(np.array([0, len(shuffled)], dtype=np.int64), shuffled)
        assert np.array_equal(hasher.signatures(alone)[0], signatures[i]), i
    assert not np.array_equal(MinHasher(num_perm=64, seed=8).signatures(sets)[0], signatures[0])
    assert MinHasher(num_perm=64).signatures(Shingles.concat([])).shape == (0, 64)


def test_true_and_estimated_jaccard():
    texts = random_texts(60, seed=1)
    sets = shingle(texts, size=2)
    pairs = np.array(list(itertools.combinations(range(len(texts)), 2)))
    exact = jaccard(pairs, sets)
    for (a, b), value in zip(pairs, exact, strict=True):
        left, right = set(sets.of(a)), set(sets.of(b))
        assert value == pytest.approx(len(left & right) / len(left | right))
    signatures = MinHasher(256).signatures(sets)
    estimate = estimated_jaccard(signatures[pairs[:, 0]], signatures[pairs[:, 1]])
    assert np.abs(estimate - exact).mean() < 0.03


def test_bands_for_threshold_meet_the_recall_target():
    for threshold in (0.5, 0.7, 0.85):
        bands, rows = bands_for_threshold(threshold, 128)
        assert bands * rows <= 128
        assert candidate_probability(threshold, bands, rows) >= 0.99
        # one more row per band would miss the target: the choice is the strictest that meets it
        assert candidate_probability(threshold, 128 // (rows + 1), rows + 1) < 0.99


def test_candidate_pairs_from_shared_bands():
    bands = np.array([[1, 2], [1, 3], [4, 3], [5, 6], [7, 8]], dtype=np.uint64)
    pairs = candidate_pairs(bands)
    assert pairs.tolist() == [[0, 1], [1, 2]]
    assert candidate_pairs(bands, eligible=np.array([True, False, True, True, True])).tolist() == []
    # a bucket larger than max_bucket only links neighbours, still one connected group
    crowd = np.zeros((6, 1), dtype=np.uint64)
    assert candidate_pairs(crowd, max_bucket=3).tolist() == [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]]
    assert len(candidate_pairs(crowd, max_bucket=64)) == 15


def test_lsh_finds_near_duplicates_not_strangers():
    base = random_texts(200, seed=3).to_list()
    copies = [" ".join(text.split()[:-1] + ["extra"]) for text in base[:50]]
    sets = shingle(pl.Series(base + copies), size=2)
    bands, rows = bands_for_threshold(0.5, 128)
    pairs = candidate_pairs(band_hashes(MinHasher(128).signatures(sets), bands, rows), sets.sizes() > 0)
    similar = jaccard(pairs, sets)
    found = {tuple(p) for p, s in zip(pairs.tolist(), similar, strict=True) if s >= 0.7}
    truth = {(i, 200 + i) for i in range(50) if jaccard(np.array([[i, 200 + i]]), sets)[0] >= 0.7}
    assert truth and truth <= found


def test_union_find_components():
    rng = np.random.default_rng(5)
    n = 300
    pairs = rng.integers(0, n, size=(200, 2))
    labels = union_find(n, pairs)
    parent = list(range(n))

    def root(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in pairs.tolist():
        parent[max(root(a), root(b))] = min(root(a), root(b))
    assert labels.tolist() == [root(i) for i in range(n)]
    assert union_find(3, np.zeros((0, 2), dtype=np.int64)).tolist() == [0, 1, 2]


def test_only_insertions_is_an_ordered_subsequence():
    tokens = TokenLists.from_series(
        pl.Series([["3", "5", "7"], ["3", "5"], ["3", "6", "7"], ["5", "3"], [], ["3", "5", "7", "9"]])
    )
    pairs = np.array([[0, 1], [0, 2], [0, 3], [0, 4], [0, 5], [1, 3]])
    assert only_insertions(pairs, tokens).tolist() == [True, False, False, True, True, False]


def test_only_insertions_matches_a_walk_over_every_pair():
    """The numpy prefix/suffix settlement gives what the plain subsequence walk gives, on copies
    with tokens inserted at the head, the tail, the middle, changed ones and unrelated lists."""
    rng = np.random.default_rng(3)
    lists = []
    for _ in range(150):
        base = [str(v) for v in rng.integers(0, 6, size=rng.integers(0, 12))]
        copy = list(base)
        for _ in range(rng.integers(0, 4)):
            spot = int(rng.choice([0, len(copy), rng.integers(0, len(copy) + 1)]))
            if rng.random() < 0.7:
                copy.insert(spot, str(rng.integers(0, 6)))
            elif copy:
                copy[min(spot, len(copy) - 1)] = str(rng.integers(0, 6))
        lists += [base, copy]
    tokens = TokenLists.from_series(pl.Series(lists, dtype=pl.List(pl.String)))
    pairs = np.concatenate([np.arange(len(lists)).reshape(-1, 2), rng.integers(0, len(lists), size=(300, 2))])

    def walk(a: int, b: int) -> bool:
        short, long = sorted((tokens.of(a), tokens.of(b)), key=len)
        rest = iter(long)
        return all(item in rest for item in short)

    expected = [walk(a, b) for a, b in pairs.tolist()]
    assert 0 < sum(expected) < len(expected)
    assert only_insertions(pairs, tokens).tolist() == expected
    assert only_insertions(pairs, tokens, chunk=7).tolist() == expected
    assert only_insertions(pairs[:0], tokens).tolist() == []


def test_normalized_texts_shingle_as_when_tokenised_again():
    """Split on spaces (normalized=True) gives the same shingle sets as matching TOKEN_PATTERN again
    on normalize_expr's output, for LaTeX, Unicode, digits next to letters, empty and null texts."""
    raw = pl.Series(
        [
            "Let $f(x)=\\dfrac{x^2}{3}$. Find  f(12)\u00a0+ f'(1).",
            "Caf\u00e9 \\alpha\u00e9 x2y \u00bd \u2212 3\u22644",
            "Problem: What is 7\u00d78? Please reason step by step.",
            "   ",
            "",
            None,
        ]
    )
    texts = pl.select(normalize_expr(pl.lit(raw))).to_series()
    for size in (1, 3, 5):
        again, split = shingle(texts, size), shingle(texts, size, normalized=True)
        assert np.array_equal(again.offsets, split.offsets) and np.array_equal(again.hashes, split.hashes)
    assert shingle(texts, 3).sizes()[3:].tolist() == [0, 0, 0]


def test_a_subset_of_shingle_sets_and_token_lists_is_the_same_sets():
    sets = shingle(random_texts(30, seed=8), size=3)
    tokens = TokenLists.from_series(pl.Series([["a", "b"], [], ["c"], ["d", "e", "f"]]))
    index = np.array([3, 0, 3, 17, 2])
    taken = sets.take(index)
    assert [taken.of(i).tolist() for i in range(len(index))] == [sets.of(i).tolist() for i in index]
    assert [tokens.take(np.array([3, 1, 0])).of(i) for i in range(3)] == [tokens.of(3), [], tokens.of(0)]
    assert len(sets.take(np.zeros(0, np.int64))) == 0


def test_band_blocks_give_the_pairs_of_all_bands():
    rng = np.random.default_rng(4)
    bands = rng.integers(0, 12, size=(200, 6)).astype(np.uint32)
    whole = candidate_pairs(bands, max_bucket=5)
    blocks = [candidate_pairs(bands[:, b : b + 2], max_bucket=5) for b in range(0, 6, 2)]
    assert np.array_equal(merge_pairs(blocks, 200), whole)
    assert (whole[:, 0] < whole[:, 1]).all() and len(np.unique(whole, axis=0)) == len(whole)
