"""longreps (opt-in): LongRePS checks on self-sampled reasoning paths over long contexts.

Each row is one sampled path (`response`, with its `reasoning`) for a question whose long context is
in `context` (the problem by default); paths of one question share `group` (problem_id). A path is
dropped, with the first failing check as its reason, for:

    no_reference            the question has no reference answer
    no_answer               no final answer could be extracted
    wrong_answer            token F1 against the reference below min_f1 (1.0: exact, after normalisation)
    no_evidence             fewer than min_quotes quoted excerpts
    unfaithful_quote        a quoted excerpt does not appear in the context
    judge_error             the judge failed (only when a judge is set)
    inconsistent_reasoning  the judge's consistency score is below judge_threshold
    not_best_path           another valid path of the same question ranks higher (best_only)

The best path is the first by curate.longctx.longreps.best_key: judge score, F1, exact match, verified
quotes (more is better), reasoning length (shorter is better), row order. The judge is off unless the
stage is given a callable (`LongRePS(judge=fn)`) or `judge_url` (an OpenAI-compatible server):

    stages:
      longreps: {enabled: true, judge_url: http://localhost:8000/v1, judge_model: Qwen2.5-72B-Instruct}
"""

from __future__ import annotations

import concurrent.futures as cf
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any, ClassVar

import polars as pl
import pyarrow.parquet as pq
from tqdm import tqdm

from curate.errors import CurateError
from curate.longctx.fields import base_column, field_expr
from curate.longctx.judge import OpenAIJudge
from curate.longctx.longreps import (
    Judge,
    PathCheck,
    best_key,
    check_path,
    final_part,
    match_normal,
    rank_paths,
)
from curate.stage import Stage, StageContext, decide

REASONS = (
    "no_reference",
    "no_answer",
    "wrong_answer",
    "no_evidence",
    "unfaithful_quote",
    "judge_error",
    "inconsistent_reasoning",
    "not_best_path",
)
RESULT_SCHEMA = {
    "row_id": pl.Int64,
    "longreps_answer": pl.String,
    "longreps_em": pl.Boolean,
    "longreps_f1": pl.Float64,
    "longreps_quotes": pl.Int64,
    "longreps_missing_quotes": pl.Int64,
    "longreps_judge": pl.Float64,
    "longreps_rank": pl.Int64,
    "_longreps_reason": pl.String,
    "_longreps_detail": pl.String,
}


class LongRePS(Stage):
    name = "longreps"
    version = "1"
    enabled_by_default: ClassVar[bool] = False
    parallel = False  # the checks need every path of a question; they run once, in prepare
    defaults: ClassVar[dict[str, Any]] = {
        "context": "problem",
        "group": "problem_id",
        "min_f1": 1.0,
        "answer_pattern": None,
        "min_quotes": 1,
        "min_quote_words": 3,
        "best_only": True,
        "judge_url": None,
        "judge_model": None,
        "judge_api_key_env": "OPENAI_API_KEY",
        "judge_threshold": 0.7,
        "judge_workers": 4,
        "judge_timeout_s": 60.0,
    }

    def __init__(self, judge: Judge | None = None, **options: Any):
        super().__init__(**options)
        opts = self.options
        base_column(opts["context"])
        base_column(opts["group"])
        if opts["answer_pattern"]:
            try:
                re.compile(opts["answer_pattern"])
            except re.error as error:
                raise CurateError(f"stage longreps: answer_pattern is not a regex: {error}") from error
        if opts["judge_url"] and judge is None:
            if not opts["judge_model"]:
                raise CurateError("stage longreps: judge_url needs judge_model")
            judge = OpenAIJudge(
                opts["judge_url"], opts["judge_model"], opts["judge_api_key_env"], opts["judge_timeout_s"]
            )
        self.judge = judge
        self.results: pl.DataFrame | None = None

    def fingerprint(self) -> dict[str, Any]:
        fingerprint = super().fingerprint()
        if self.judge is not None:
            fingerprint["judge"] = getattr(
                self.judge, "name", getattr(self.judge, "__qualname__", repr(self.judge))
            )
        return fingerprint

    def _batches(self, ctx: StageContext) -> Iterator[pl.DataFrame]:
        opts = self.options
        columns = sorted(
            {
                "row_id",
                "response",
                "reasoning",
                "reference",
                base_column(opts["context"]),
                base_column(opts["group"]),
            }
        )
        for part in ctx.input_parts():
            for batch in pq.ParquetFile(part).iter_batches(columns=columns, batch_size=256):
                yield pl.from_arrow(batch).select(
                    "row_id",
                    "response",
                    "reasoning",
                    "reference",
                    field_expr(opts["context"]).alias("context"),
                    field_expr(opts["group"]).alias("group"),
                )

    def _check_batch(self, batch: pl.DataFrame, pool: cf.Executor | None) -> list[PathCheck]:
        opts = self.options
        rows = batch.rows(named=True)
        normal: dict[str, str] = {}  # paths of one question share their context: normalise it once
        checks = []
        for row in rows:
            context = row["context"] or ""
            if context not in normal:
                normal[context] = match_normal(context)
            checks.append(
                check_path(
                    row["response"],
                    row["reference"],
                    context,
                    min_f1=opts["min_f1"],
                    min_quotes=opts["min_quotes"],
                    min_quote_words=opts["min_quote_words"],
                    answer_pattern=opts["answer_pattern"],
                    normal_context=normal[context],
                )
            )
        if pool is not None:
            todo = [(row, check) for row, check in zip(rows, checks, strict=True) if check.reason is None]
            calls = [pool.submit(self._judge_one, row, check) for row, check in todo]
            for (_, check), call in zip(todo, calls, strict=True):
                self._apply_judge(check, call)
        return checks

    def _judge_one(self, row: dict[str, Any], check: PathCheck) -> float:
        assert self.judge is not None
        reasoning = row["reasoning"] or final_part(row["response"] or "")
        return float(self.judge(row["context"] or "", reasoning, check.answer or ""))

    def _apply_judge(self, check: PathCheck, call: cf.Future) -> None:
        try:
            check.judge = call.result()
        except Exception as error:  # any failure of the judge is the path's verdict, never the run's
            check.reason, check.detail = "judge_error", f"{type(error).__name__}: {error}"[:300]
            return
        threshold = self.options["judge_threshold"]
        if check.judge < threshold:
            check.reason = "inconsistent_reasoning"
            check.detail = f"judge score {check.judge:.2f} < {threshold:g}"

    def prepare(self, ctx: StageContext) -> None:
        row_ids: list[int] = []
        groups: list[str | None] = []
        lengths: list[int] = []
        checks: list[PathCheck] = []
        pool = cf.ThreadPoolExecutor(max(1, int(self.options["judge_workers"]))) if self.judge else None
        bar = tqdm(
            total=ctx.input_rows(),
            desc=f"{ctx.index:02d} longreps checks",
            unit="path",
            disable=not ctx.progress,
            leave=False,
        )
        try:
            with bar:
                for batch in self._batches(ctx):
                    row_ids += batch["row_id"].to_list()
                    groups += batch["group"].to_list()
                    lengths += batch["reasoning"].fill_null("").str.len_chars().to_list()
                    checks += self._check_batch(batch, pool)
                    bar.update(batch.height)
        finally:
            if pool is not None:
                pool.shutdown()
        keys = [
            best_key(check, length, row_id) if check.reason is None else None
            for check, length, row_id in zip(checks, lengths, row_ids, strict=True)
        ]
        ranks = rank_paths(groups, keys)
        valid = Counter(group for group, rank in zip(groups, ranks, strict=True) if rank is not None)
        best_row = {groups[i]: row_ids[i] for i, rank in enumerate(ranks) if rank == 1}
        if self.options["best_only"]:
            for i, rank in enumerate(ranks):
                if rank is not None and rank > 1:
                    checks[i].reason = "not_best_path"
                    checks[
                        i
                    ].detail = f"rank {rank} of {valid[groups[i]]} valid paths; the best is row {best_row[groups[i]]}"
        self.results = pl.DataFrame(
            {
                "row_id": row_ids,
                "longreps_answer": [c.answer for c in checks],
                "longreps_em": [c.em for c in checks],
                "longreps_f1": [c.f1 for c in checks],
                "longreps_quotes": [c.quotes for c in checks],
                "longreps_missing_quotes": [c.missing for c in checks],
                "longreps_judge": [c.judge for c in checks],
                "longreps_rank": ranks,
                "_longreps_reason": [c.reason for c in checks],
                "_longreps_detail": [c.detail for c in checks],
            },
            schema=RESULT_SCHEMA,
        )
        ctx.stats["longreps"] = {
            "paths": len(checks),
            "questions": len(set(groups)),
            "questions_with_a_valid_path": len(best_row),
            "judged": sum(c.judge is not None for c in checks),
        }

    def process(self, batch: pl.DataFrame) -> pl.DataFrame:
        if self.results is None:
            raise CurateError("stage longreps: process() called before prepare()")
        batch = batch.drop([c for c in RESULT_SCHEMA if c != "row_id" and c in batch.columns])
        batch = batch.join(self.results, on="row_id", how="left", maintain_order="left")
        for reason in REASONS:
            batch = decide(batch, pl.col("_longreps_reason") == reason, reason, pl.col("_longreps_detail"))
        return batch.drop("_longreps_reason", "_longreps_detail")
