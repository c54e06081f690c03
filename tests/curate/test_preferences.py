"""REDI preference pairs from a curated workspace: passing traces from the shards against verify's
`fail` drops, one negative per problem by default, length filters, `distillery export --to redi`."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl
import pytest

from curate.catalog import connect
from curate.errors import CurateError
from curate.export import export
from curate.pipeline import curate
from curate.preferences import PairRule, candidates, pick_pairs, write_preferences
from distill.cli import main
from tests.conftest import shared_file, write_jsonl

PROBLEMS = 6


def small_traces() -> list:
    """Per problem: one correct trace, two wrong ones (one of them long), one with no answer at all;
    plus a problem with only a wrong trace, and a malformed line."""
    rows: list = []
    for i in range(PROBLEMS):
        problem, right = f"What is {i} plus {i + 10}? Give the number.", 2 * i + 10
        think = "<think>\nWe add {} and {}{}.\n</think>\n\nThe answer is $\\boxed{{{}}}$."
        rows += [
            {
                "problem": problem,
                "response": think.format(i, i + 10, " carefully", right),
                "reference": str(right),
            },
            {
                "problem": problem,
                "response": think.format(i, i + 10, " and get it", right + 1),
                "reference": str(right),
            },
            {
                "problem": problem,
                "response": think.format(i, i + 10, ", then again" * 20, right + 5),
                "reference": str(right),
            },
            {
                "problem": problem,
                "response": "<think>\n"
                + "I keep thinking. " * 20
                + "\n</think>\n\n"
                + "No idea, sorry. " * 25,
                "reference": str(right),
            },
        ]
    rows.append(
        {"problem": "What is 7 times 9?", "response": "The answer is $\\boxed{62}$.", "reference": "63"}
    )
    return rows


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("prefs")
    path = write_jsonl(base / "traces.jsonl", small_traces())
    with path.open("a") as handle:
        handle.write("{broken json\n")
    ws = base / "ws"
    config = {"stages": {"shard": {"val_fraction": 0.2, "system": "Think, then answer."}}}
    curate([str(path)], ws, config, workers=1, progress=False)
    return ws


def read_pairs(out: Path) -> pl.DataFrame:
    return pl.read_parquet(out / "*" / "*.parquet")


def test_pairs_are_a_passing_shard_trace_against_a_failed_one(workspace, tmp_path):
    written = export(workspace, "redi", tmp_path, progress=False)
    assert {(w["domain"], w["split"]) for w in written} == {("math", "train"), ("math", "val")}
    pairs = read_pairs(tmp_path)
    assert pairs.height == PROBLEMS and pairs["problem_id"].n_unique() == PROBLEMS  # one per problem
    con = connect(workspace)
    shards = con.sql("SELECT row_id, split FROM shards").pl()
    verdicts = dict(con.sql("SELECT row_id, status FROM verify").fetchall())
    failed = con.sql("SELECT row_id FROM rejected WHERE stage = 'verify' AND reason = 'fail'").pl()
    for pair in pairs.to_dicts():
        assert verdicts[pair["chosen_row_id"]] == pair["chosen_status"] == "pass"
        assert verdicts[pair["rejected_row_id"]] == pair["rejected_status"] == "fail"
        assert pair["rejected_row_id"] in failed["row_id"].to_list()
        split = shards.filter(pl.col("row_id") == pair["chosen_row_id"])["split"].item()
        assert split == pair["split"]
        # both sides are conversations as the shards write them: system, user, assistant
        for side in ("chosen", "rejected"):
            assert [m["role"] for m in pair[side]] == ["system", "user", "assistant"]
            assert pair[side][0]["content"] == "Think, then answer."
        assert pair["chosen"][1] == pair["rejected"][1]  # the same problem
    # The acceptance query: every pair's two row ids and their verify statuses, from plain DuckDB.
    rows = duckdb.sql(
        f"SELECT chosen_row_id, chosen_status, rejected_row_id, rejected_status "
        f"FROM read_parquet('{tmp_path}/*/*.parquet')"
    ).fetchall()
    assert len(rows) == PROBLEMS and {(r[1], r[3]) for r in rows} == {("pass", "fail")}
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["rule"]["negatives_per_problem"] == 1
    assert sum(s["pairs"] for s in manifest["domains"]["math"].values()) == PROBLEMS


def test_negatives_are_fail_only(workspace):
    """no_answer drops, the malformed line and the problem with no passing trace never pair."""
    frame = candidates(workspace)
    con = connect(workspace)
    statuses = dict(con.sql("SELECT row_id, verify_status FROM rejected WHERE stage = 'verify'").fetchall())
    assert set(statuses.values()) == {"fail", "no_answer"}
    assert {statuses[r] for r in frame["rejected_row_id"].to_list()} == {"fail"}
    # every fail drop of a problem with a passing trace is a candidate, two per problem
    assert frame.select("problem_id", "rejected_row_id").unique().height == 2 * PROBLEMS
    pairs, _ = pick_pairs(frame, PairRule(negatives_per_problem=5))
    assert len(pairs) == 2 * PROBLEMS  # only two negatives exist per problem


def test_choice_is_seeded_and_deterministic(workspace, tmp_path):
    frame = candidates(workspace)
    first, _ = pick_pairs(frame, PairRule(seed=0))
    assert pick_pairs(frame, PairRule(seed=0))[0] == first
    chosen = {p["rejected_row_id"] for p in first}
    others = [{p["rejected_row_id"] for p in pick_pairs(frame, PairRule(seed=s))[0]} for s in range(1, 6)]
    assert any(o != chosen for o in others), "the seed picks among each problem's negatives"
    write_preferences(workspace, tmp_path / "a")
    write_preferences(workspace, tmp_path / "b")
    for file in (tmp_path / "a" / "math").glob("*.parquet"):
        assert file.read_bytes() == (tmp_path / "b" / "math" / file.name).read_bytes()


def test_length_filters(workspace):
    frame = candidates(workspace)
    lengths = frame.select("rejected_row_id", "rejected_chars").unique()
    short_limit = int(lengths["rejected_chars"].min()) + 10  # below the long wrong traces
    pairs, _ = pick_pairs(frame, PairRule(negatives_per_problem=2, max_chars=short_limit))
    assert len(pairs) == PROBLEMS and all(p["rejected_chars"] <= short_limit for p in pairs)
    pairs, skipped = pick_pairs(frame, PairRule(max_chars=10))
    assert pairs == [] and skipped["too_long"] == PROBLEMS
    # a ratio of 1.2 rules out the long negative (several times the passing trace's length)
    pairs, _ = pick_pairs(frame, PairRule(negatives_per_problem=2, max_ratio=1.2))
    assert len(pairs) == PROBLEMS
    assert all(
        max(p["chosen_chars"], p["rejected_chars"]) <= 1.2 * min(p["chosen_chars"], p["rejected_chars"])
        for p in pairs
    )
    with pytest.raises(CurateError, match="token counts"):  # write_preferences counts them
        pick_pairs(frame, PairRule(max_tokens=12))
    with pytest.raises(CurateError, match="max ratio"):
        PairRule(max_ratio=0.5)


def test_max_tokens_counts_words_without_a_tokenizer(workspace, tmp_path):
    write_preferences(workspace, tmp_path, rule=PairRule(negatives_per_problem=2, max_tokens=20))
    pairs = read_pairs(tmp_path)
    assert pairs.height == PROBLEMS and pairs["rejected_tokens"].max() <= 20


def test_cli_export_redi(workspace, tmp_path, capsys):
    out = tmp_path / "pairs"
    assert (
        main(["export", str(workspace), "--to", "redi", "--out", str(out), "--negatives-per-problem", "2"])
        == 0
    )
    assert read_pairs(out).height == 2 * PROBLEMS
    assert "exported 12 rows" in capsys.readouterr().out
    assert (
        main(["export", str(workspace), "--to", "jsonl", "--out", str(tmp_path / "j"), "--max-ratio", "2"])
        == 2
    )
    assert "--max-ratio is an option of --to redi" in capsys.readouterr().err


def test_view_is_empty_before_shards(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", small_traces())
    curate([str(path)], tmp_path / "ws", workers=1, progress=False, until="normalize")
    assert connect(tmp_path / "ws").execute("SELECT count(*) FROM preference_candidates").fetchone() == (0,)


def test_real_traces_pair(tmp_path):
    """Qwen's math traces (several samples a problem, some wrong): every problem in the shards with a
    failed sample gets a pair."""
    source = shared_file("math/qwen_math_cot_100.jsonl")
    curate([str(source)], tmp_path / "ws", workers=1, progress=False)
    export(tmp_path / "ws", "redi", tmp_path / "pairs", progress=False)
    pairs = read_pairs(tmp_path / "pairs")
    con = connect(tmp_path / "ws")
    (problems,) = con.execute("SELECT count(DISTINCT problem_id) FROM preference_candidates").fetchone()
    assert pairs.height == problems > 5
    assert set(pairs["rejected_status"]) == {"fail"} and set(pairs["chosen_status"]) == {"pass"}
