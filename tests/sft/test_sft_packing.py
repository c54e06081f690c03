"""Best-fit packing, per-sample positions and targets, and the over-long policy."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from distill.sft.data import IGNORE_INDEX, Example
from distill.sft.packing import best_fit_decreasing, fit_to_length, pack_row


def test_best_fit_places_every_item_once_within_capacity():
    rng = random.Random(0)
    for _ in range(20):
        capacity = rng.randint(50, 400)
        lengths = [rng.randint(1, capacity) for _ in range(rng.randint(1, 120))]
        bins = best_fit_decreasing(lengths, capacity)
        assert sorted(i for b in bins for i in b) == list(range(len(lengths)))
        assert all(sum(lengths[i] for i in b) <= capacity for b in bins)
        # A fit-based packing never leaves two bins that could have been one.
        loads = [sum(lengths[i] for i in b) for b in bins]
        assert all(a + b > capacity for a, b in itertools.combinations(loads, 2))


def test_best_fit_goes_longest_first_into_the_tightest_bin():
    # 6 and 5 open bins with 4 and 5 free; the 4 fills the first exactly, then 3 and 2 fill the second.
    assert best_fit_decreasing([6, 5, 4, 3, 2], 10) == [[0, 2], [1, 3, 4]]
    # Input order does not matter: items are taken longest first.
    assert best_fit_decreasing([3, 4, 7, 6], 10) == [[2, 0], [3, 1]]
    with pytest.raises(ValueError):
        best_fit_decreasing([11], 10)


def example(n: int, supervised_from: int, offset: int = 0) -> Example:
    ids = np.arange(offset, offset + n)
    labels = np.where(np.arange(n) >= supervised_from, ids, IGNORE_INDEX)
    return Example(ids, labels)


def test_pack_row_restarts_positions_and_never_predicts_across_samples():
    examples = [example(5, 2, offset=100), example(3, 1, offset=200), example(4, 0, offset=300)]
    row = pack_row(examples)
    assert row.position_ids.tolist() == [[0, 1, 2, 3, 4, 0, 1, 2, 0, 1, 2, 3]]
    assert row.cu_seqlens.tolist() == [0, 5, 8, 12]
    assert row.input_ids[0].tolist() == list(range(100, 105)) + list(range(200, 203)) + list(range(300, 304))
    i = IGNORE_INDEX
    # token t predicts t+1 of its own sample; the last token of each sample predicts nothing
    assert row.targets[0].tolist() == [i, 102, 103, 104, i, 201, 202, i, 301, 302, 303, i]
    assert row.n_supervised == 8 and row.max_len == 5


def test_overlong_samples_are_dropped_or_truncated():
    examples = [example(10, 2), example(30, 5), example(30, 28), example(8, 0)]
    kept, stats = fit_to_length(examples, seq_len=20, overlong="drop")
    assert [len(e) for e in kept] == [10, 8] and (stats.dropped, stats.truncated) == (2, 0)
    kept, stats = fit_to_length(examples, seq_len=20, overlong="truncate")
    # the third sample has nothing supervised in its first 20 tokens: dropped, not trained on empty
    assert [len(e) for e in kept] == [10, 20, 8] and (stats.dropped, stats.truncated) == (1, 1)
    assert kept[1].n_supervised == 15
