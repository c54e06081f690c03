"""The vectorised paths of the per-row stages agree with the plain rules they stand for."""

from __future__ import annotations

import random

import polars as pl

from curate.stage import rows_of
from curate.stages.quality import (
    _counted_foreign_share,
    _foreign_share,
    ngram_repeat_ratio,
    ngram_repeat_ratios,
)
from curate.think import assistant_expr


def test_hashed_ngram_ratios_decide_like_the_exact_ratio_and_are_exact_where_they_drop():
    rng = random.Random(0)
    spaces = [" ", "\t", "\n", "\x1c", "\u3000", "\xa0", "  ", "\u2009", " \n "]
    texts = [None, "", "   ", "one", " ".join(["loop"] * 30), "x y " * 40]
    for _ in range(200):
        vocabulary = [f"w{i}" for i in range(rng.randint(1, 30))]
        texts.append("".join(rng.choice(vocabulary) + rng.choice(spaces) for _ in range(rng.randint(0, 120))))
    series = pl.Series(texts, dtype=pl.String)
    decided = 0
    for n in (1, 3, 10):
        for limit in (0.0, 0.3, 0.5, 0.9):
            for text, fast in zip(texts, ngram_repeat_ratios(series, n, limit).to_list(), strict=True):
                exact = ngram_repeat_ratio(text, n)
                assert (exact > limit) == (fast > limit)
                if exact > limit:
                    assert fast == exact
                    decided += 1
    assert decided > 100  # the loops and small vocabularies do cross the limits


def test_foreign_share_skips_only_rows_whose_answer_cannot_be_foreign():
    frame = pl.DataFrame(
        {
            "problem": ["Solve x", "求解方程", "$x^2$", None, "Solve", "Решите задачу", "Solve"],
            "reasoning": ["think", "think", None, "t", "думаю", "ok", "mixed 中文"],
            "response": [
                "<think>think</think>Answer 4",
                "<think>think</think>answer",
                "4",
                "x",
                "<think>думаю</think>ok",
                "<think>ok</think>да",
                "<think>mixed 中文</think>ok",
            ],
        }
    ).with_columns(assistant_expr().alias("_assistant"))
    shares = _foreign_share(frame)
    assert shares.to_list() == _counted_foreign_share(frame).to_list()
    assert shares[1] == 1.0 and 0 < shares[4] < 1 and shares[0] == 0.0


def test_rows_of_gives_the_slice_a_batch_joins():
    table = pl.DataFrame({"row_id": [1, 3, 5, 7, 9], "v": list("abcde")})
    batch = pl.DataFrame({"row_id": [5, 4, 8]})
    assert rows_of(table, batch)["row_id"].to_list() == [5, 7]
    assert rows_of(table, batch.clear()).height == 5
