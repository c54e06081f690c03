"""decontaminate: drop (or flag) rows whose problem shares a word n-gram with a benchmark item.

Benchmarks are files (`stages: {decontaminate: {benchmarks: [aime24.jsonl, math500.jsonl]}}`), read
like any input (curate.readers + curate.formats: the problem text of each record). Problems and
benchmark items get the comparison normalisation (curate.text), then their word n-grams (`ngram`,
default 8; 13 is the other common choice) are hashed and joined with the benchmark n-grams. A
text with fewer than `ngram` words is one n-gram of all its words, so a short problem matches only
a benchmark item that is the same whole text.

A row is contaminated by an item when their shared n-grams make up at least `min_overlap`
(default 0.5) of the shorter text's n-grams: math statements share boilerplate 8-grams ("where m and n are relatively prime
positive integers") with hundreds of unrelated problems, and one such phrase is not a leaked
item. `min_overlap: 0` flags any shared n-gram.

`mode: drop` (default) rejects the row with reason `contaminated`; `mode: flag` keeps it and fills
the `contaminated_by` column ("benchmark:item"). Either way each hit lands in the `contamination`
view: benchmark, item and the first matched n-gram. With no benchmark configured the stage keeps
every row and says so.

Shuffle: none; a broadcast. The benchmark n-gram table (hash, item, the item's n-gram count) is
built on the driver and handed to every task once (StageContext.map's `shared`); each task takes
one piece of the input (ROW_CHUNK rows), joins its problems' n-grams against the table and sends
back its hits only. The output does not depend on how the input is cut.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from curate.dedup.shingles import MAX_SHINGLE_SIZE, ngram_hashes
from curate.errors import CurateError, InputError
from curate.formats import ADAPTERS, detect_format
from curate.readers import checksum, iter_chunks, parse_line, resolve_inputs, sample_records
from curate.stage import InputPiece, Stage, StageContext, apply_decisions, keep
from curate.text import WORD_PATTERN, normalize_expr

MODES = ("drop", "flag")
ITEM_KEYS = ("id", "unique_id", "task_id", "idx", "problem_id", "question_id")
ROW_CHUNK = 50_000  # rows per task


def load_benchmark(path: str) -> pl.DataFrame:
    """benchmark (the file's stem), item (its id field, else its line or record number) and problem
    of every record of a benchmark file (or of each file of a folder); records without a problem
    are skipped (a benchmark is read, not curated)."""
    frames = []
    for inp in resolve_inputs([path]):
        sample = sample_records(inp)
        adapter = ADAPTERS.get(detect_format(sample) or "") if sample else None
        if adapter is None:
            raise InputError(
                inp.path, "cannot read benchmark problems from this file (no known format)", line=1
            )
        items: list[tuple[str, str]] = []
        for chunk in iter_chunks(inp):
            numbered = [(f"line {n}", parse_line(raw)[0]) for n, raw in chunk.lines]
            numbered += [(f"record {n}", record) for n, record in chunk.records]
            for fallback, record in numbered:
                try:
                    rows = adapter.convert(record) if isinstance(record, dict) else []
                except Exception:  # a record the adapter cannot read holds no benchmark problem
                    rows = []
                for row in rows:
                    meta = row.get("meta") or {}
                    item = next((str(meta[k]) for k in ITEM_KEYS if meta.get(k) is not None), fallback)
                    if isinstance(row.get("problem"), str):
                        items.append((item, row["problem"]))
        frames.append(
            pl.DataFrame(
                {
                    "benchmark": [inp.stem] * len(items),
                    "item": [i for i, _ in items],
                    "problem": [p for _, p in items],
                },
                schema={"benchmark": pl.String, "item": pl.String, "problem": pl.String},
            )
        )
    return pl.concat(frames)


def word_ngrams(normalized: pl.Series, size: int) -> pl.DataFrame:
    """owner, pos, hash of every word n-gram (whole text when shorter) of normalised texts."""
    owner, pos, hashes = ngram_hashes(normalized, size, "word")
    return pl.DataFrame({"owner": owner, "pos": pos, "hash": hashes})


def ngram_text(normalized: pl.Series, owner: np.ndarray, pos: np.ndarray, size: int) -> list[str]:
    """The n-gram words starting at word `pos` of text `owner`, as text (only the owners' texts are
    split into words: a piece's hits are few, its texts many)."""
    words = normalized.gather(owner).str.extract_all(WORD_PATTERN).to_list()
    return [" ".join(w[int(p) : int(p) + size]) for w, p in zip(words, pos, strict=True)]


class Decontaminate(Stage):
    name = "decontaminate"
    version = "1"
    defaults: dict[str, Any] = {"benchmarks": [], "ngram": 8, "mode": "drop", "min_overlap": 0.5}
    types = {"benchmarks": (list, str)}
    choices = {"mode": MODES}
    parallel = False  # process() is a join against the hits
    side_tables = ("contamination",)

    def __init__(self, **options: Any):
        super().__init__(**options)
        o = self.options
        if not isinstance(o["ngram"], int) or not 1 <= o["ngram"] <= MAX_SHINGLE_SIZE:
            raise CurateError(f"stage decontaminate: ngram must be an integer from 1 to {MAX_SHINGLE_SIZE}")
        benchmarks = o["benchmarks"]
        if isinstance(benchmarks, str):
            benchmarks = [benchmarks]
        self.benchmarks = [str(p) for p in benchmarks or []]
        for path in self.benchmarks:
            if not Path(path).exists():
                raise CurateError(f"stage decontaminate: benchmark file {path} does not exist")
        self.checksums = {path: checksum(inp) for path in self.benchmarks for inp in resolve_inputs([path])}
        self.hits = pl.DataFrame()
        self.flagged = pl.DataFrame(
            schema={"row_id": pl.Int64, "contaminated_by": pl.String, "evidence": pl.String}
        )

    def fingerprint(self) -> dict[str, Any]:
        return {**super().fingerprint(), "benchmark_sha256": self.checksums, "polars": pl.__version__}

    def prepare(self, ctx: StageContext) -> None:
        size = self.options["ngram"]
        if not self.benchmarks:
            message = (
                "no benchmark files configured (stages: decontaminate: benchmarks: [...]); every row kept"
            )
            print(f"decontaminate: {message}", file=sys.stderr)
            ctx.stats["note"] = message
            return
        items = pl.concat([load_benchmark(path) for path in self.benchmarks]).with_row_index("item_index")
        items_norm = items.select(normalize_expr("problem"))["problem"]
        grams = word_ngrams(items_norm, size).unique(["owner", "hash"], keep="first", maintain_order=True)
        grams = grams.with_columns(pl.len().over("owner").alias("item_grams")).select(
            "hash", pl.col("owner").alias("item_index"), "item_grams"
        )
        pieces = ctx.input_pieces(ROW_CHUNK)
        if not pieces:
            ctx.scan()  # raises: no input rows
        shared = (grams, size, self.options["min_overlap"])
        hits = pl.concat(ctx.map(piece_hits, pieces, shared))
        self.hits = (
            hits.join(items.select("item_index", "benchmark", "item"), on="item_index")
            .sort("row_id", "benchmark", "item", "item_index")
            .select(
                "row_id",
                "id",
                "benchmark",
                pl.col("item").alias("benchmark_item"),
                "matched_ngram",
                "overlap",
                pl.lit(self.options["mode"] == "drop").alias("dropped"),
            )
        )
        first = self.hits.unique("row_id", keep="first", maintain_order=True)  # hits are sorted
        # sorted by row_id, as curate.stage.apply_decisions expects
        self.flagged = first.select(
            "row_id",
            pl.format("{}:{}", "benchmark", "benchmark_item").alias("contaminated_by"),
            pl.format(
                '{} item {}: {} of n-grams shared, first "{}"',
                "benchmark",
                "benchmark_item",
                pl.col("overlap").round(2),
                "matched_ngram",
            ).alias("evidence"),
        )
        ctx.stats.update(
            benchmarks={b: int(n) for b, n in items.group_by("benchmark").len().iter_rows()},
            contaminated_rows=self.hits["row_id"].n_unique(),
        )

    def process(self, batch: pl.DataFrame) -> pl.DataFrame:
        if self.options["mode"] == "flag":
            flags = self.flagged.select("row_id", "contaminated_by")
            return keep(batch).join(flags, on="row_id", how="left", maintain_order="left")
        return apply_decisions(
            batch,
            self.flagged.select(
                "row_id", pl.lit("contaminated").alias("reason"), pl.col("evidence").alias("detail")
            ),
        )

    def finish(self, ctx: StageContext) -> None:
        if self.hits.height:
            ctx.write_side_table("contamination", self.hits)  # sorted by row_id, benchmark, item


def piece_hits(piece: InputPiece, shared: tuple[pl.DataFrame, int, float]) -> pl.DataFrame:
    """The hits of one piece's problems against the benchmark n-grams: row_id, id, item_index,
    matched_ngram (the first shared n-gram, as text) and overlap, for every (row, item) pair whose
    shared n-grams make up at least `min_overlap` of the shorter text's n-grams."""
    grams, size, min_overlap = shared
    problems = piece.scan().select("row_id", "id", normalize_expr("problem").alias("norm")).collect()
    row_grams = word_ngrams(problems["norm"], size).unique(
        ["owner", "hash"], keep="first", maintain_order=True
    )
    row_grams = row_grams.with_columns(pl.len().over("owner").alias("row_grams"))
    # The share of the shorter text's n-grams found in the other: a lone shared phrase such as
    # "where m and n are relatively prime positive" is boilerplate, not a leaked item.
    hits = (
        row_grams.join(grams, on="hash")
        .group_by("owner", "item_index")
        .agg(
            pl.len().alias("shared"),
            pl.col("pos").min(),
            pl.col("row_grams").first(),
            pl.col("item_grams").first(),
        )
        .with_columns((pl.col("shared") / pl.min_horizontal("row_grams", "item_grams")).alias("overlap"))
        .filter(pl.col("overlap") >= min_overlap)
        .sort("owner", "item_index")
    )
    owner, pos = hits["owner"].to_numpy(), hits["pos"].to_numpy()
    return hits.select(
        pl.Series("row_id", problems["row_id"].to_numpy()[owner], dtype=pl.Int64),
        pl.Series("id", problems["id"].to_numpy()[owner], dtype=pl.String),
        "item_index",
        pl.Series("matched_ngram", ngram_text(problems["norm"], owner, pos, size), dtype=pl.String),
        "overlap",
    )
