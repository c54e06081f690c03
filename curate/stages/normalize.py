"""normalize: clean the text fields without changing what they say.

Unicode NFC, Windows line endings to `\\n`, control and zero-width characters removed, the problem
and reference trimmed. A problem that is empty after cleaning is dropped (`empty_problem`).
The aggressive normalisation used to *compare* problems (case, LaTeX spacing, instruction
suffixes) belongs to dedup and decontamination, which keep the text itself intact.
"""

from __future__ import annotations

import polars as pl

from curate.stage import Stage, decide

TEXT_COLUMNS = ("problem", "reasoning", "response", "reference")
INVISIBLE = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\u200c\u200d\u2060\ufeff]"


def clean_text(column: str) -> pl.Expr:
    """Line endings and invisible characters (NFC is `nfc`, on the batch: it needs a row mask)."""
    return pl.col(column).str.replace_all("\r\n", "\n", literal=True).str.replace_all(INVISIBLE, "")


def nfc(texts: pl.Series) -> pl.Series:
    """`texts` in Unicode NFC. Pure ASCII is NFC already, and most traces are ASCII: only the
    other rows are normalised (the NFC pass is ~20x a regex scan, so this is most of the stage)."""
    wide = texts.str.contains(r"[^\x00-\x7F]").fill_null(False)
    if not wide.any():
        return texts
    return texts.scatter(wide.arg_true(), texts.filter(wide).str.normalize("NFC"))


class Normalize(Stage):
    name = "normalize"
    version = "1"

    def process(self, batch: pl.DataFrame) -> pl.DataFrame:
        batch = batch.with_columns(*(clean_text(c) for c in TEXT_COLUMNS))
        batch = batch.with_columns(nfc(batch[c]) for c in TEXT_COLUMNS)
        batch = batch.with_columns(pl.col("problem").str.strip_chars(), pl.col("reference").str.strip_chars())
        return decide(
            batch,
            pl.col("problem").is_null() | (pl.col("problem").str.len_chars() == 0),
            "empty_problem",
            pl.lit("problem is empty after normalisation"),
        )
