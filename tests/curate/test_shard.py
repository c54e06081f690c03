"""shard: SFT-ready Parquet shards per domain, train/val by problem, messages, sizes, manifest, reruns."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest

import sql
from curate.pipeline import curate
from curate.stages.domain import Domain
from curate.stages.normalize import Normalize
from curate.stages.quality import Quality
from curate.stages.select import Select
from curate.stages.shard import Shard
from curate.workspace import Workspace
from tests.conftest import SHARED_DATA, shared_file
from tests.curate.test_quality import REASONING, assert_ledger_balances, run_pipeline, train_tokenizer

SHARED_INPUTS = ("math", "problems", "code")


def curate_shared(base: Path) -> Path:
    """`curate` over every shared math, problems and code file, with the default pipeline.

    Reruns into the same folder reuse the committed stages, so several test modules share one run.
    """
    files = [str(p) for folder in SHARED_INPUTS for p in sorted((SHARED_DATA / folder).glob("*.jsonl"))]
    if not files:
        pytest.skip(f"shared data not present: {SHARED_DATA}")
    ws = base / "shared_ws"
    curate(files, ws, progress=False)
    return ws


@pytest.fixture(scope="module")
def shared_ws(tmp_path_factory) -> Path:
    return curate_shared(tmp_path_factory.getbasetemp())


def test_curate_on_the_shared_data_gives_math_and_code_shards(shared_ws):
    assert_ledger_balances(Workspace.open(shared_ws))
    con = sql.connect(shared_ws)
    domains = dict(con.execute("SELECT domain, count(*) FROM shards GROUP BY 1").fetchall())
    assert {"math", "code"} <= set(domains)
    assert sum(domains.values()) == con.execute("SELECT count(*) FROM kept").fetchone()[0]
    leaks = con.execute(
        """SELECT t.problem_id FROM shards s JOIN traces t USING (row_id)
           GROUP BY t.problem_id HAVING count(DISTINCT s.split) > 1"""
    ).fetchall()
    assert leaks == [], "no problem is in both train and val"
    for domain in ("math", "code"):
        for split in ("train", "val"):
            assert (shared_ws / "shards" / domain / f"{split}-00000.parquet").exists()
    manifest = json.loads((shared_ws / "shards" / "manifest.json").read_text())
    for domain, count in domains.items():
        assert sum(s["rows"] for s in manifest["domains"][domain].values()) == count
    files = con.execute("SELECT DISTINCT file FROM shards").fetchall()
    assert all((shared_ws / f).exists() for (f,) in files)


def test_shards_load_with_datasets(shared_ws):
    folder = shared_ws / "shards" / "math"
    loaded = datasets.load_dataset(
        "parquet", data_files={"train": str(folder / "train-*.parquet"), "val": str(folder / "val-*.parquet")}
    )
    assert set(loaded) == {"train", "val"}
    assert loaded["train"].column_names == ["id", "problem_id", "domain", "messages"], (
        "no n_tokens without a tokenizer"
    )
    conversation = loaded["train"][0]["messages"]
    assert [m["role"] for m in conversation] == ["user", "assistant"]
    con = sql.connect(shared_ws)
    problem, response = con.execute(
        "SELECT problem, response FROM kept WHERE id = ?", [loaded["train"][0]["id"]]
    ).fetchone()
    assert conversation == [{"role": "user", "content": problem}, {"role": "assistant", "content": response}]
    by_folder = datasets.load_dataset(str(shared_ws / "shards" / "code"))
    assert set(by_folder) == {"train", "validation"}, "file names tell `datasets` the splits"


def test_messages_keep_reasoning_inside_think(tmp_path):
    records = [
        {
            "problem": "What is 2 + 2?",
            "response": f"<think>\n{REASONING}\n</think>\n\nThe sum is $\\boxed{{4}}$.",
            "source": "t",
        },
        {
            "problem": "What is 3 + 3?",
            "response": f"{REASONING}\n</think>\nIt is $\\boxed{{6}}$.",
            "source": "t",
        },
        {"problem": "What is 4 + 4?", "response": "It is $\\boxed{8}$.", "source": "t"},
    ]
    ws = run_pipeline(
        tmp_path,
        records,
        [Normalize(), Quality(think="optional"), Domain(), Shard(system="Think first.", val_fraction=0)],
    )
    rows = pq.read_table(ws.root / "shards" / "math" / "train-00000.parquet").to_pylist()
    by_problem = {r["messages"][1]["content"]: r["messages"] for r in rows}
    assert by_problem["What is 2 + 2?"] == [
        {"role": "system", "content": "Think first."},
        {"role": "user", "content": "What is 2 + 2?"},
        {"role": "assistant", "content": f"<think>\n{REASONING}\n</think>\n\nThe sum is $\\boxed{{4}}$."},
    ]
    assert (
        by_problem["What is 3 + 3?"][2]["content"]
        == f"<think>\n{REASONING}\n</think>\n\nIt is $\\boxed{{6}}$."
    )
    assert by_problem["What is 4 + 4?"][2]["content"] == "It is $\\boxed{8}$.", (
        "no reasoning: the response as is"
    )


def test_val_is_chosen_by_problem_and_files_are_sized(tmp_path):
    qwen = [str(shared_file("math/qwen_math_cot_100.jsonl"))]
    ws = run_pipeline(tmp_path, qwen, [Domain(), Shard(val_fraction=0.2, rows_per_shard=100)])
    con = sql.connect(ws.root)
    per_problem = con.execute(
        """SELECT t.problem_id, count(DISTINCT s.split), count(*) FROM shards s JOIN traces t USING (row_id)
           GROUP BY 1"""
    ).fetchall()
    assert all(splits == 1 for _, splits, _ in per_problem), "all generations of a problem share a split"
    val_problems = con.execute(
        "SELECT count(DISTINCT t.problem_id) FROM shards s JOIN traces t USING (row_id) WHERE split = 'val'"
    ).fetchone()[0]
    assert val_problems == 20, "20% of the 100 problems"
    manifest = json.loads((ws.root / "shards" / "manifest.json").read_text())
    train = manifest["domains"]["math"]["train"]
    assert train["rows"] == 640 and [f["rows"] for f in train["files"]] == [100] * 6 + [40]
    assert manifest["token_counter"] == "whitespace" and train["tokens"] == sum(
        f["tokens"] for f in train["files"]
    )
    for entry in train["files"]:
        assert pq.ParquetFile(ws.root / "shards" / "math" / entry["file"]).metadata.num_rows == entry["rows"]
    files = dict(con.execute("SELECT file, count(*) FROM shards GROUP BY 1").fetchall())
    assert files["shards/math/train-00006.parquet"] == 40


def test_reruns_give_identical_files_and_resume_reuses_them(tmp_path):
    files = [str(shared_file("math/math500.jsonl")), str(shared_file("code/humaneval.jsonl"))]
    stages = lambda: [Normalize(), Quality(), Domain(), Shard(rows_per_shard=200)]  # noqa: E731
    first = run_pipeline(tmp_path / "a", files, stages())
    second = run_pipeline(tmp_path / "b", files, stages())

    def digests(root: Path) -> dict[str, str]:
        return {
            str(p.relative_to(root / "shards")): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / "shards").rglob("*.parquet"))
        }

    assert (
        digests(first.root) == digests(second.root) and len(digests(first.root)) == 6
    )  # math: 3+1, code: 1+1
    before = {p: p.stat().st_mtime_ns for p in (first.root / "shards").rglob("*.parquet")}
    again = run_pipeline(tmp_path / "a", files, stages())
    assert {p: p.stat().st_mtime_ns for p in (again.root / "shards").rglob("*.parquet")} == before, "reused"
    reseeded = run_pipeline(
        tmp_path / "c", files, [Normalize(), Quality(), Domain(), Shard(rows_per_shard=200, seed=7)]
    )
    assert digests(reseeded.root) != digests(first.root)


def test_token_counts_with_a_tokenizer(tmp_path):
    folder = str(train_tokenizer(tmp_path / "tokenizer"))
    records = [
        {
            "problem": f"What is {i} + {i}?",
            "response": f"<think>\n{REASONING}\n</think>\n\n$\\boxed{{{2 * i}}}$",
            "source": "t",
        }
        for i in range(6)
    ]
    ws = run_pipeline(tmp_path, records, [Quality(tokenizer=folder), Domain(), Shard(val_fraction=0)])
    table = pq.read_table(ws.root / "shards" / "math" / "train-00000.parquet")
    assert "n_tokens" in table.column_names, "the quality stage's tokenizer counted them"
    con = sql.connect(ws.root)
    expected = dict(con.execute("SELECT id, n_tokens FROM kept").fetchall())
    assert {r["id"]: r["n_tokens"] for r in table.to_pylist()} == expected
    manifest = json.loads((ws.root / "shards" / "manifest.json").read_text())
    assert manifest["token_counter"] == folder
    assert manifest["domains"]["math"]["train"]["tokens"] == sum(expected.values())


def test_domains_option_rejects_the_rest(tmp_path):
    files = [str(shared_file("math/math500.jsonl")), str(shared_file("code/humaneval.jsonl"))]
    ws = run_pipeline(tmp_path, files, [Domain(), Shard(domains=["code"])])
    assert_ledger_balances(ws)
    con = sql.connect(ws.root)
    assert con.execute("SELECT DISTINCT domain FROM shards").fetchall() == [("code",)]
    assert con.execute("SELECT reason, count(*) FROM rejected GROUP BY 1").fetchall() == [
        ("domain_not_sharded", 500)
    ]
    assert not (ws.root / "shards" / "math").exists()


def test_when_earlier_stages_drop_every_row(tmp_path):
    prompts = [
        {"problem": f"Prompt {i} with no generation yet.", "response": None, "source": "t"} for i in range(3)
    ]
    ws = run_pipeline(tmp_path, prompts, [Quality(), Domain(), Select(), Shard()])
    assert_ledger_balances(ws)
    manifest = json.loads((ws.root / "shards" / "manifest.json").read_text())
    assert manifest["domains"] == {}
    assert sql.connect(ws.root).execute("SELECT count(*) FROM shards").fetchone()[0] == 0
