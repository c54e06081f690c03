"""select: pass-rate down-sampling, keep-K per problem, length windows and per-domain targets."""

from __future__ import annotations

import json
from collections import defaultdict

import polars as pl
import pytest

import sql
from curate.errors import CurateError
from curate.schema import problem_id
from curate.stage import Stage, StageContext, decide
from curate.stages.domain import Domain
from curate.stages.normalize import Normalize
from curate.stages.select import Select
from tests.conftest import shared_file
from tests.curate.test_quality import assert_ledger_balances, run_pipeline


class VerdictsFromMeta(Stage):
    """Stands in for the verify stage (another task's): the verdict is the sample's grader `score`
    from meta; it writes every verdict to the `verify` side table and drops the failures, as verify does."""

    name = "verify"

    def prepare(self, ctx: StageContext) -> None:
        self.verdicts = ctx.scan().select("id", "row_id", *self._status()).collect()

    @staticmethod
    def _status() -> list[pl.Expr]:
        passed = pl.col("meta").str.json_path_match("$.score") == "true"
        return [
            pl.lit("math").alias("kind"),
            pl.when(passed).then(pl.lit("pass")).otherwise(pl.lit("fail")).alias("status"),
        ]

    def process(self, batch: pl.DataFrame) -> pl.DataFrame:
        batch = batch.with_columns(*self._status())
        return decide(batch.drop("kind"), pl.col("status") != "pass", "fail", pl.lit("grader score false"))

    def finish(self, ctx: StageContext) -> None:
        ctx.write_side_table(
            "verify",
            self.verdicts.with_columns(
                pl.lit(None, pl.String).alias("extracted"),
                pl.lit("").alias("detail"),
                pl.lit(0.0).alias("seconds"),
            ),
        )


def qwen_truth() -> dict[str, list[bool]]:
    """problem_id -> the grader's verdict on each of its 8 samples, read from the raw file."""
    truth = {}
    for line in shared_file("math/qwen_math_cot_100.jsonl").read_text().splitlines():
        record = json.loads(line)
        truth[problem_id(record["question"])] = record["score"]
    return truth


def kept_rows(ws) -> list[dict]:
    cursor = sql.connect(ws.root).execute("SELECT * FROM kept")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def rejected_by(ws, reason: str) -> list[dict]:
    cursor = sql.connect(ws.root).execute("SELECT * FROM rejected WHERE reason = ?", [reason])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def test_pass_rate_comes_from_every_verified_generation(tmp_path):
    truth = qwen_truth()
    qwen = [str(shared_file("math/qwen_math_cot_100.jsonl"))]
    ws = run_pipeline(tmp_path, qwen, [Normalize(), VerdictsFromMeta(), Select(easy_keep=0.5)])
    assert_ledger_balances(ws)
    assert ws.manifest()["stages"][-1]["pass_rate_from"] == "verify"
    for row in kept_rows(ws):
        scores = truth[row["problem_id"]]
        assert row["n_samples"] == len(scores) == 8
        assert row["pass_rate"] == pytest.approx(sum(scores) / 8), (
            "failed samples count, though verify dropped them"
        )
    easy = {p for p, scores in truth.items() if all(scores)}
    dropped = rejected_by(ws, "too_easy")
    dropped_problems = {r["problem_id"] for r in dropped}
    assert dropped_problems <= easy, "only problems every sample solves are down-sampled"
    assert len(dropped) == 8 * len(dropped_problems), "whole problems go, never single samples"
    assert 0.3 < len(dropped_problems) / len(easy) < 0.7
    kept_problems = {r["problem_id"] for r in kept_rows(ws)}
    assert {p for p in truth if not all(truth[p]) and any(truth[p])} <= kept_problems
    assert "8 samples; 50.0% of easy problems kept" in dropped[0]["detail"]

    again = run_pipeline(tmp_path / "again", qwen, [Normalize(), VerdictsFromMeta(), Select(easy_keep=0.5)])
    assert {r["row_id"] for r in rejected_by(again, "too_easy")} == {r["row_id"] for r in dropped}
    other_seed = run_pipeline(
        tmp_path / "seed", qwen, [Normalize(), VerdictsFromMeta(), Select(easy_keep=0.5, seed=1)]
    )
    assert {r["problem_id"] for r in rejected_by(other_seed, "too_easy")} != dropped_problems


def test_pass_field_from_meta_without_verify(tmp_path):
    truth = qwen_truth()
    ws = run_pipeline(
        tmp_path,
        [str(shared_file("math/qwen_math_cot_100.jsonl"))],
        [Select(pass_field="score", easy_keep=0.0)],
    )
    assert ws.manifest()["stages"][-1]["pass_rate_from"] == "meta.score"
    assert {r["problem_id"] for r in rejected_by(ws, "too_easy")} == {p for p, s in truth.items() if all(s)}
    rates = {r["problem_id"]: r["pass_rate"] for r in kept_rows(ws)}
    assert all(rates[p] == pytest.approx(sum(truth[p]) / 8) for p in rates)


@pytest.mark.parametrize("prefer", ["shortest", "longest"])
def test_keep_k_per_problem_by_length(tmp_path, prefer):
    ws = run_pipeline(
        tmp_path,
        [str(shared_file("math/qwen_math_cot_100.jsonl"))],
        [Select(max_per_problem=2, prefer=prefer)],
    )
    con = sql.connect(ws.root)
    length = "len(string_split_regex(trim(concat_ws(' ', problem, reasoning, response)), '\\s+'))"
    kept = defaultdict(list)
    for pid, n in con.execute(f"SELECT problem_id, {length} FROM kept").fetchall():
        kept[pid].append(n)
    dropped = defaultdict(list)
    for pid, n, reason in con.execute(f"SELECT problem_id, {length}, reason FROM rejected").fetchall():
        assert reason == "per_problem_cap"
        dropped[pid].append(n)
    assert len(kept) == 100 and all(len(v) == 2 for v in kept.values())
    for pid, lengths in kept.items():
        if prefer == "shortest":
            assert max(lengths) <= min(dropped[pid])
        else:
            assert min(lengths) >= max(dropped[pid])


def test_length_window_per_domain(tmp_path):
    files = [str(shared_file("math/math500.jsonl")), str(shared_file("code/humaneval.jsonl"))]
    ws = run_pipeline(tmp_path, files, [Domain(), Select(length_quantiles=[0.1, 0.9])])
    con = sql.connect(ws.root)
    length = "len(string_split_regex(trim(concat_ws(' ', problem, reasoning, response)), '\\s+'))"
    for domain, total in (("math", 500), ("code", 164)):
        low, high = con.execute(
            f"SELECT quantile_disc({length}, 0.1), quantile_disc({length}, 0.9) FROM stage_domain WHERE domain = ?",
            [domain],
        ).fetchone()
        kept = [n for (n,) in con.execute(f"SELECT {length} FROM kept WHERE domain = ?", [domain]).fetchall()]
        assert all(low <= n <= high for n in kept)
        dropped = con.execute(
            "SELECT count(*) FROM rejected WHERE domain = ? AND reason = 'length_selection'", [domain]
        ).fetchone()[0]
        assert dropped + len(kept) == total and 0.1 * total < dropped < 0.3 * total


def test_domain_targets_fill_problem_by_problem(tmp_path):
    files = ["math/math500.jsonl", "math/qwen_math_cot_100.jsonl", "code/humaneval.jsonl"]
    ws = run_pipeline(
        tmp_path, [str(shared_file(f)) for f in files], [Domain(), Select(targets={"math": 300, "code": 50})]
    )
    assert_ledger_balances(ws)
    con = sql.connect(ws.root)
    counts = dict(con.execute("SELECT domain, count(*) FROM kept GROUP BY 1").fetchall())
    assert counts == {"math": 300, "code": 50}
    assert (
        con.execute("SELECT count(DISTINCT problem_id) FROM kept WHERE domain = 'math'").fetchone()[0] == 300
    )
    reasons = dict(con.execute("SELECT reason, count(*) FROM rejected GROUP BY 1").fetchall())
    assert reasons == {"over_target": 1464 - 350}


def test_bad_options_are_clear_errors():
    with pytest.raises(CurateError, match="prefer"):
        Select(prefer="best")
    with pytest.raises(CurateError, match="length_quantiles"):
        Select(length_quantiles=[0.9, 0.1])
