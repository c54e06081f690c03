"""shard: SFT-ready Parquet shards per domain, split into train and val by problem.

    WS/shards/<domain>/{train,val}-NNNNN.parquet     id, problem_id, domain, messages[, n_tokens]
    WS/shards/manifest.json                           rows, problems and tokens per domain, split, file

`messages` is list<struct<role, content>>: an optional system turn (`system`), the problem as the
user turn, and the assistant turn `<think>\\n{reasoning}\\n</think>\\n\\n{answer}` (the response
without its reasoning part; rows with no reasoning keep their response as it is). Load a domain with
`datasets.load_dataset("parquet", data_files={"train": "WS/shards/math/train-*.parquet"})`.

Train/val is decided per problem, never per row: every problem gets one home domain (where most of
its rows are), and `val_fraction` of each domain's problems, chosen by a seeded hash, go to val with
all their rows, in every domain. Rows are shuffled by a seeded hash and cut into files of at most
`rows_per_shard` rows and `shard_mb` MB of text.

The shard files are written inside the stage folder, so they are committed (or thrown away) with
the stage by the runner's atomic rename, and a rerun writes the same bytes; `WS/shards` is a
relative symlink to them. `n_tokens` is in the shards when a tokenizer counted it: this stage's
`tokenizer`, or else the quality stage's; the manifest always has token totals, labelled with the
counter that made them (`whitespace` words when no tokenizer is configured).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from curate.rows import count_tokens, load_tokenizer, plain_strings, seeded_key, tokenizer_checksum
from curate.stage import BATCH_ROWS, Stage, StageContext, decide, rows_of
from curate.think import assistant_expr, has_reasoning
from curate.workspace import stage_label, write_json_atomic

SPLITS = ("train", "val")
MESSAGE_TYPE = pl.List(pl.Struct({"role": pl.String, "content": pl.String}))


def messages_expr(system: str | None) -> pl.Expr:
    """The conversation of a trace row: [system], user = problem, assistant = reasoning + answer."""
    turns = [pl.struct(pl.lit("user").alias("role"), pl.col("problem").alias("content"))]
    turns.append(pl.struct(pl.lit("assistant").alias("role"), assistant_expr().alias("content")))
    if system is not None:
        turns.insert(0, pl.struct(pl.lit("system").alias("role"), pl.lit(system).alias("content")))
    return pl.concat_list(turns).cast(MESSAGE_TYPE)


class Shard(Stage):
    name = "shard"
    version = "1"
    parallel = False  # process() is a join against decisions made in prepare(): a pool only copies
    defaults = {
        "val_fraction": 0.05,
        "val_max_problems": None,  # cap on val problems per domain
        "seed": 0,
        "system": None,  # system prompt for every conversation
        "rows_per_shard": 10_000,
        "shard_mb": 256,
        "tokenizer": None,  # count n_tokens with this tokenizer (default: the quality stage's counts)
        "domains": None,  # shard only these; rows of other domains are dropped (domain_not_sharded)
    }
    types = {"val_max_problems": int, "system": str, "tokenizer": str, "domains": list, "seed": (int, str)}

    def __init__(self, **options: Any):
        super().__init__(**options)
        name = self.options["tokenizer"]
        self.tokenizer = load_tokenizer(name) if name else None
        self.val_problems: pl.DataFrame | None = None

    def fingerprint(self) -> dict[str, Any]:
        checksum = tokenizer_checksum(self.tokenizer) if self.tokenizer is not None else None
        return {**super().fingerprint(), "tokenizer_checksum": checksum}

    def prepare(self, ctx: StageContext) -> None:
        if not ctx.input_parts():  # an earlier stage dropped every row
            self.val_problems = pl.DataFrame(schema={"problem_id": pl.String, "split": pl.String})
            return
        problems = (
            ctx.scan()
            .group_by("problem_id", "domain")
            .len()
            .sort("problem_id", pl.col("len"), "domain", descending=[False, True, False])
            .group_by("problem_id", maintain_order=True)
            .first()
            .collect()
        )
        problems = problems.with_columns(
            pl.Series("_key", seeded_key(problems["problem_id"].to_list(), self.options["seed"]))
        )
        val_count = self._val_count(pl.len())
        self.val_problems = (
            problems.with_columns(
                pl.col("_key").rank("ordinal").over("domain").alias("_rank"),
                val_count.over("domain").alias("_n"),
            )
            .filter(pl.col("_rank") <= pl.col("_n"))
            .select("problem_id", pl.lit("val").alias("split"))
        )

    def _val_count(self, problems: pl.Expr) -> pl.Expr:
        """Val problems for a domain of `problems` problems: the fraction, at least one when there are two."""
        fraction, cap = self.options["val_fraction"], self.options["val_max_problems"]
        count = (problems.cast(pl.Float64) * fraction).round().cast(pl.Int64)
        if fraction > 0:
            count = pl.when((count == 0) & (problems >= 2)).then(1).otherwise(count)
        return count.clip(upper_bound=cap) if cap is not None else count

    def process(self, batch: pl.DataFrame) -> pl.DataFrame:
        assert self.val_problems is not None, "prepare() assigns the val problems"
        batch = batch.join(self.val_problems, on="problem_id", how="left", maintain_order="left")
        batch = batch.with_columns(pl.col("split").fill_null("train"))
        # verify and quality drop prompts already; with both disabled, a prompt still never trains
        response = pl.col("response")
        batch = decide(
            batch,
            (response.is_null() | (response.str.strip_chars() == "")) & ~has_reasoning(),
            "prompt",
            pl.lit("no response: a prompt for generation, nothing to train on"),
        )
        domains = self.options["domains"]
        drop = ~pl.col("domain").is_in(domains) if domains is not None else pl.lit(False)
        return decide(
            batch, drop, "domain_not_sharded", pl.format("domain {} is not in domains", pl.col("domain"))
        )

    def finish(self, ctx: StageContext) -> None:
        parts = sorted(ctx.out_dir.glob("part-*.parquet"))
        root = ctx.out_dir / "shards"
        root.mkdir()
        counter, from_input = self._token_counter(ctx)
        manifest: dict[str, Any] = {"token_counter": counter, "options": self.options, "domains": {}}
        placed = []
        if parts:
            # Streaming, so memory holds one shard and a small table per row, never a domain:
            # 1. per row its domain, split, size and tokens; 2. the shuffled order cut into files;
            # 3. each row spooled to its file's spool; 4. each spool sorted and written as its shard.
            columns = (*_ROW_INPUTS, "n_tokens") if from_input else _ROW_INPUTS
            keys = pl.concat(self._keys(frame, from_input) for frame in _batches(parts, columns))
            plan = []  # (domain, split, the rows in shuffled order with their file and position)
            for domain in sorted(keys["domain"].unique().to_list()):
                for split in SPLITS:
                    rows = keys.filter((pl.col("domain") == domain) & (pl.col("split") == split))
                    if rows.height == 0:
                        continue
                    rows, files = self._cut(rows, domain, split, len(plan))
                    manifest["domains"].setdefault(domain, {})[split] = {
                        "rows": rows.height,
                        "problems": rows["problem_id"].n_unique(),
                        "tokens": sum(f["tokens"] for f in files),
                        "files": files,
                    }
                    plan.append(rows)
                    placed.append(
                        rows.select("id", "row_id", "file").with_columns(
                            pl.lit(domain).alias("domain"), pl.lit(split).alias("split")
                        )
                    )
            self._write(parts, pl.concat(plan), root, from_input or self.tokenizer is not None)
        write_json_atomic(root / "manifest.json", manifest)
        side = (
            pl.concat(placed)
            if placed
            else pl.DataFrame(
                schema={
                    "id": pl.String,
                    "row_id": pl.Int64,
                    "file": pl.String,
                    "domain": pl.String,
                    "split": pl.String,
                }
            )
        )
        ctx.write_side_table("shards", side)
        ctx.stats["shards"] = {
            d: {s: v["rows"] for s, v in splits.items()} for d, splits in manifest["domains"].items()
        }
        _link_shards(
            ctx.workspace.root, ctx.workspace.stages_dir / stage_label(ctx.index, self.name) / "shards"
        )

    def _token_counter(self, ctx: StageContext) -> tuple[str, bool]:
        """Who counts tokens, and whether the input's `n_tokens` (from quality) are real tokens."""
        if self.tokenizer is not None:
            return self.options["tokenizer"], False
        quality = ctx.workspace.stage("quality")
        counter = quality.info().get("token_counter") if quality is not None else None
        has_counts = bool(ctx.input_parts()) and "n_tokens" in ctx.scan().collect_schema().names()
        if counter and counter != "whitespace" and has_counts:
            return counter, True
        return "whitespace", False

    def _keys(self, frame: pl.DataFrame, from_input: bool) -> pl.DataFrame:
        """Per row what placing it needs: id, row_id, problem_id, domain, split, bytes and tokens
        (of the text of every turn, joined by newlines)."""
        messages = messages_expr(self.options["system"])
        text = messages.list.eval(pl.element().struct.field("content")).list.join("\n")
        texts = frame.select(text).to_series().to_list()
        tokens = frame["n_tokens"].to_list() if from_input else count_tokens(texts, self.tokenizer)
        return frame.select(
            "id",
            "row_id",
            "problem_id",
            "domain",
            "split",
            pl.Series("_bytes", [len(t.encode()) for t in texts], pl.Int64),
            pl.Series("_tokens", tokens, pl.Int64),
        )

    def _cut(
        self, rows: pl.DataFrame, domain: str, split: str, group: int
    ) -> tuple[pl.DataFrame, list[dict]]:
        """One domain's split in its seeded shuffled order, cut into files of at most
        `rows_per_shard` rows and `shard_mb` MB: the rows with `file` (as the shards view names it),
        `_name`, `_file` (a number for the spool), `_position`, and the files' manifest entries."""
        order = seeded_key(rows["row_id"].to_list(), f"{self.options['seed']}:order")
        rows = rows.with_columns(pl.Series("_order", order)).sort("_order", "row_id")
        sizes, tokens = rows["_bytes"].to_list(), rows["_tokens"].to_list()
        limit_rows, limit_bytes = self.options["rows_per_shard"], self.options["shard_mb"] * (1 << 20)
        files, names, start = [], [], 0
        while start < rows.height:
            end, used = start + 1, sizes[start]
            while end < rows.height and end - start < limit_rows and used + sizes[end] <= limit_bytes:
                used += sizes[end]
                end += 1
            name = f"{split}-{len(files):05d}.parquet"
            files.append({"file": name, "rows": end - start, "tokens": int(sum(tokens[start:end]))})
            names += [name] * (end - start)
            start = end
        rows = rows.with_columns(
            pl.Series("_name", names, pl.String),
            pl.int_range(pl.len(), dtype=pl.Int64).alias("_position"),
        ).with_columns(
            ("shards/" + pl.lit(domain) + "/" + pl.col("_name")).alias("file"),
            (pl.lit(domain) + "/" + pl.col("_name")).alias("_path"),
        )
        return rows, files

    def _write(self, parts: list[Path], plan: pl.DataFrame, root: Path, with_tokens: bool) -> None:
        """Write every shard of the plan: rows spooled per file in one pass over the parts, then each
        spool in its shuffled order (one shard in memory at a time)."""
        spool_dir = root / ".spool"
        spool_dir.mkdir()
        where = plan.select("row_id", "_path", "_position", pl.col("_tokens").alias("n_tokens")).sort(
            "row_id"
        )
        writers: dict[str, pa.ipc.RecordBatchFileWriter] = {}
        sinks: list[pa.NativeFile] = []
        spooled = pa.ipc.IpcWriteOptions(compression="lz4")  # spools are read once, soon: fast, not small
        for frame in _batches(parts, _ROW_INPUTS):
            frame = frame.with_columns(messages_expr(self.options["system"]).alias("messages")).join(
                rows_of(where, frame), on="row_id", how="inner", maintain_order="left"
            )
            out = frame.select(
                "id", "problem_id", "domain", "messages", *(["n_tokens"] if with_tokens else [])
            )
            out = out.with_columns(frame["_path"], frame["_position"])
            for (path,), rows in out.partition_by("_path", as_dict=True, maintain_order=True).items():
                table = plain_strings(rows.drop("_path").to_arrow())
                if path not in writers:
                    sinks.append(pa.OSFile(str(spool_dir / f"{len(writers):05d}.arrow"), "wb"))
                    writers[path] = pa.ipc.new_file(sinks[-1], table.schema, options=spooled)
                writers[path].write_table(table)
        for writer, sink in zip(writers.values(), sinks, strict=True):
            writer.close()
            sink.close()
        for number, path in enumerate(writers):
            spool = spool_dir / f"{number:05d}.arrow"
            with pa.memory_map(str(spool)) as source:
                table = pa.ipc.open_file(source).read_all()
            shard = pl.from_arrow(table).sort("_position").drop("_position")
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(plain_strings(shard.to_arrow()).combine_chunks(), root / path, compression="zstd")
            spool.unlink()
        spool_dir.rmdir()


_ROW_INPUTS = ("id", "row_id", "problem_id", "domain", "split", "problem", "reasoning", "response")


def _batches(parts: list[Path], columns: tuple[str, ...] | None) -> Iterator[pl.DataFrame]:
    """The stage's kept rows, a batch at a time (`columns` only, or all)."""
    for part in parts:
        for batch in pq.ParquetFile(part, pre_buffer=False).iter_batches(
            batch_size=BATCH_ROWS, columns=list(columns) if columns else None
        ):
            yield pl.from_arrow(batch)


def _link_shards(workspace_root: Path, target: Path) -> None:
    """Point WS/shards at the stage's shard folder (relative, so the workspace can move)."""
    link = workspace_root / "shards"
    tmp = workspace_root / ".shards.link"
    tmp.unlink(missing_ok=True)
    os.symlink(os.path.relpath(target, workspace_root), tmp)
    if link.is_dir() and not link.is_symlink():
        shutil.rmtree(link)
    os.replace(tmp, link)


def read_manifest(workspace_root: str | Path) -> dict[str, Any]:
    """WS/shards/manifest.json."""
    return json.loads((Path(workspace_root) / "shards" / "manifest.json").read_text())
