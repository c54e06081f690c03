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
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from curate.rows import count_tokens, load_tokenizer, plain_strings, seeded_key, tokenizer_checksum
from curate.stage import Stage, StageContext, decide
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
            rows = pl.scan_parquet([str(p) for p in parts])
            for domain in sorted(rows.select(pl.col("domain").unique()).collect()["domain"].to_list()):
                for split in SPLITS:
                    frame = rows.filter((pl.col("domain") == domain) & (pl.col("split") == split)).collect()
                    if frame.height == 0:
                        continue
                    files, where = self._write(frame, root / domain, split, from_input)
                    manifest["domains"].setdefault(domain, {})[split] = {
                        "rows": frame.height,
                        "problems": frame["problem_id"].n_unique(),
                        "tokens": sum(f["tokens"] for f in files),
                        "files": files,
                    }
                    placed.append(
                        where.with_columns(pl.lit(domain).alias("domain"), pl.lit(split).alias("split"))
                    )
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

    def _write(
        self, frame: pl.DataFrame, folder: Path, split: str, from_input: bool
    ) -> tuple[list[dict], pl.DataFrame]:
        """Write one domain's split in shuffled, sized files; returns the files and where each row went."""
        folder.mkdir(parents=True, exist_ok=True)
        system = self.options["system"]
        order = seeded_key(frame["row_id"].to_list(), f"{self.options['seed']}:order")
        frame = frame.with_columns(pl.Series("_order", order), messages_expr(system).alias("messages"))
        frame = frame.sort("_order", "row_id")
        # The text of every turn, for token counts and shard sizes.
        text = frame.select(
            pl.col("messages").list.eval(pl.element().struct.field("content")).list.join("\n")
        )
        texts = text.to_series().to_list()
        tokens = frame["n_tokens"].to_list() if from_input else count_tokens(texts, self.tokenizer)
        out = frame.select("id", "problem_id", "domain", "messages")
        if from_input or self.tokenizer is not None:
            out = out.with_columns(pl.Series("n_tokens", tokens, pl.Int64))
        sizes = [len(t.encode()) for t in texts]
        limit_rows, limit_bytes = self.options["rows_per_shard"], self.options["shard_mb"] * (1 << 20)
        files, where, start = [], [], 0
        while start < out.height:
            end, used = start + 1, sizes[start]
            while end < out.height and end - start < limit_rows and used + sizes[end] <= limit_bytes:
                used += sizes[end]
                end += 1
            name = f"{split}-{len(files):05d}.parquet"
            pq.write_table(
                plain_strings(out.slice(start, end - start).to_arrow()), folder / name, compression="zstd"
            )
            files.append({"file": name, "rows": end - start, "tokens": int(sum(tokens[start:end]))})
            placed = frame.slice(start, end - start).select("id", "row_id")
            where.append(placed.with_columns(pl.lit(f"shards/{folder.name}/{name}").alias("file")))
            start = end
        return files, pl.concat(where)


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
