"""normalize: NFC only where a row needs it, line endings and invisible characters everywhere."""

from __future__ import annotations

import unicodedata

import polars as pl

from curate.stages.normalize import TEXT_COLUMNS, Normalize, nfc


def test_nfc_normalises_only_non_ascii_rows_and_keeps_every_row_in_place():
    texts = pl.Series(["plain ascii", "e\u0301t\u00e9", None, "A\u030a and \ufb01", "", "x\u0327y"])
    out = nfc(texts).to_list()
    assert out == [None if t is None else unicodedata.normalize("NFC", t) for t in texts.to_list()]
    # NFC composes and keeps compatibility forms
    assert out[1] == "\u00e9t\u00e9" and out[3] == "\u00c5 and \ufb01"


def test_process_cleans_a_mixed_batch_like_the_whole_column_rule():
    rows = {
        "problem": ["  e\u0301\r\nx ", "\u200bplain", "\x07", "ok"],
        "reasoning": [None, "a\r\nb", "c\u0327", "d"],
        "response": ["r\ufeff", "s", "A\u030a", None],
        "reference": [" 1 ", None, "2", "\u00e9 "],
    }
    batch = pl.DataFrame(rows, schema={c: pl.String for c in TEXT_COLUMNS})
    out = Normalize().process(batch)
    assert out["problem"].to_list() == ["\u00e9\nx", "plain", "", "ok"]
    assert out["reasoning"].to_list() == [None, "a\nb", "\u00e7", "d"]
    assert out["response"].to_list() == ["r", "s", "\u00c5", None]
    assert out["reference"].to_list() == ["1", None, "2", "\u00e9"]
    assert out["_reason"].to_list() == [None, None, "empty_problem", None]
