"""The SQL views and the `distillery sql` command."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

import sql
from curate.errors import CurateError
from curate.pipeline import curate
from tests.conftest import shared_file, write_jsonl

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sql")
    data = write_jsonl(
        root / "mixed.jsonl",
        [
            {"problem": "1+1?", "solution": "<think>one and one</think>\\boxed{2}", "answer": "2"},
            {"problem": "   ", "solution": "blank problem", "answer": "0"},
            {"problem": ["bad"], "answer": "1"},
            {"problem": "2+2?", "solution": "\\boxed{4}", "answer": "4"},
        ],
    )
    curate([str(data)], root / "ws", progress=False, until="normalize")
    return root / "ws"


def query(ws: Path, text: str) -> list[tuple]:
    return sql.connect(ws).execute(text).fetchall()


def test_views_exist_and_the_ledger_balances(ws):
    assert set(sql.view_names()) >= {
        "traces",
        "kept",
        "rejected",
        "ledger",
        "funnel",
        "verify",
        "clusters",
        "contamination",
        "shards",
    }
    (traces, kept, rejected) = query(
        ws,
        "select (select count(*) from traces), (select count(*) from kept), (select count(*) from rejected)",
    )[0]
    assert (traces, kept, rejected) == (4, 2, 2)
    # each row: exactly one drop, or it survived the last stage
    assert query(
        ws,
        """
        select count(*) from traces t
        where (select count(*) from ledger l where l.row_id = t.row_id and decision = 'drop')
              + (select count(*) from kept k where k.row_id = t.row_id) <> 1
    """,
    ) == [(0,)]


def test_funnel_counts_by_stage_and_reason(ws):
    rows = query(ws, "select stage, rows_in, rows_out, dropped, by_reason from funnel")
    assert rows == [("ingest", 4, 3, 1, {"malformed": 1}), ("normalize", 3, 2, 1, {"empty_problem": 1})]


def test_ledger_decisions(ws):
    rows = query(ws, "select stage, decision, reason, count(*) from ledger group by all order by all")
    assert rows == [
        ("ingest", "drop", "malformed", 1),
        ("ingest", "keep", None, 3),
        ("normalize", "drop", "empty_problem", 1),
        ("normalize", "keep", None, 2),
    ]


def test_views_of_stages_that_did_not_run_are_empty_not_errors(ws):
    for view in ("verify", "clusters", "contamination", "shards"):
        assert query(ws, f"select count(*) from {view}") == [(0,)]
    assert [c[0] for c in sql.connect(ws).execute("describe verify").fetchall()][:4] == [
        "id",
        "row_id",
        "kind",
        "status",
    ]
    assert query(ws, "select count(*) from stage_near_dedup") == [(0,)]


def test_connect_refuses_a_folder_that_is_not_a_workspace(tmp_path):
    with pytest.raises(CurateError, match="not a distillery workspace"):
        sql.connect(tmp_path)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "distill.cli", "sql", *args], capture_output=True, text=True, cwd=REPO
    )


def test_cli_formats(ws, tmp_path):
    as_json = cli(str(ws), "select stage, dropped, by_reason from funnel", "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == [
        {"stage": "ingest", "dropped": 1, "by_reason": {"malformed": 1}},
        {"stage": "normalize", "dropped": 1, "by_reason": {"empty_problem": 1}},
    ]
    as_csv = cli(str(ws), "select stage, rows_out from funnel", "--format", "csv")
    assert as_csv.stdout.splitlines() == ["stage,rows_out", "ingest,3", "normalize,2"]
    table = cli(str(ws), "select problem from kept order by row_id")
    assert table.stdout.splitlines()[2:] == ["1+1?   ", "2+2?   ", "(2 rows)"]
    out = tmp_path / "kept.parquet"
    assert cli(str(ws), "select * from kept", "--format", "parquet", "--out", str(out)).returncode == 0
    assert pq.read_table(out).num_rows == 2
    bad = cli(str(ws), "select nope from kept")
    assert bad.returncode == 1 and "nope" in bad.stderr


def test_interactive_shell_runs_statements(ws):
    shell = subprocess.run(
        [sys.executable, "-m", "distill.cli", "sql", str(ws)],
        input=".tables\nselect count(*) as n\nfrom traces;\n.quit\n",
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert shell.returncode == 0, shell.stderr
    assert "funnel" in shell.stdout and "ledger" in shell.stdout
    assert "4" in shell.stdout.split("n", 1)[-1]


PLAIN_DUCKDB = """
import json, sys
import duckdb

assert not any(name.split(".")[0] in ("curate", "sql", "distill") for name in sys.modules)
con = duckdb.connect()
if len(sys.argv) > 3:  # a moved workspace: say where it is now
    con.execute("SET VARIABLE distillery_ws = '" + sys.argv[3] + "'")
con.execute(open(sys.argv[1]).read())
out = {}
for view in sys.argv[2].split(","):
    out[view] = con.execute(f"SELECT * FROM {view} ORDER BY ALL").fetchall()
assert not any(name.split(".")[0] in ("curate", "sql", "distill") for name in sys.modules)
print(json.dumps(out, default=str))
"""


def plain_duckdb(script: Path, views: list[str], cwd: Path, root: Path | None = None) -> dict:
    """Every view's rows as read by the duckdb module alone, in a fresh interpreter."""
    args = [sys.executable, "-c", PLAIN_DUCKDB, str(script), ",".join(views), *([str(root)] if root else [])]
    done = subprocess.run(args, capture_output=True, text=True, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def distillery_rows(ws: Path, views: list[str]) -> dict:
    con = sql.connect(ws)
    rows = {v: con.execute(f"SELECT * FROM {v} ORDER BY ALL").fetchall() for v in views}
    return json.loads(json.dumps(rows, default=str))


@pytest.fixture(scope="module")
def full_ws(tmp_path_factory) -> Path:
    """Every stage on real data (drops by five stages, side tables, verify timings)."""
    inputs = [shared_file(f) for f in ("math/qwen_math_cot_100.jsonl", "code/humaneval.jsonl")]
    config = {"stages": {"decontaminate": {"benchmarks": [str(shared_file("math/math500.jsonl"))]}}}
    ws = tmp_path_factory.mktemp("sqlfull") / "ws"
    curate([str(p) for p in inputs], ws, config, progress=False)
    return ws


def test_views_sql_gives_plain_duckdb_the_same_rows_as_connect(full_ws, tmp_path):
    views = sql.view_names()
    script = full_ws / "views.sql"
    assert script.exists(), "curate writes WS/views.sql"
    expected = distillery_rows(full_ws, views)
    assert all(expected[v] for v in ("kept", "rejected", "verify", "clusters", "contamination", "shards"))
    assert plain_duckdb(script, views, cwd=tmp_path) == expected  # from another directory


def test_a_moved_workspace_reads_with_its_new_path(full_ws, tmp_path):
    views = ["funnel", "rejected", "verify"]
    expected = distillery_rows(full_ws, views)
    moved = tmp_path / "elsewhere"
    shutil.copytree(full_ws, moved)
    assert plain_duckdb(moved / "views.sql", views, cwd=tmp_path, root=moved) == expected


def test_rejected_files_share_one_schema_for_a_plain_parquet_glob(full_ws):
    files = sorted((full_ws / "rejected").glob("*.parquet"))
    assert len(files) >= 4
    assert len({pq.read_schema(f).remove_metadata() for f in files}) == 1
    by_stage = dict(
        pl.scan_parquet(str(full_ws / "rejected" / "*.parquet")).group_by("stage").len().collect().iter_rows()
    )
    assert by_stage == dict(
        sql.connect(full_ws).execute("SELECT stage, count(*) FROM rejected GROUP BY 1").fetchall()
    )
    # the stage's own columns come back as typed columns of the view
    con = sql.connect(full_ws)
    types = dict((c[0], c[1]) for c in con.execute("DESCRIBE rejected").fetchall())
    assert types["verify_status"] == "VARCHAR" and types["n_tokens"] == "BIGINT" and "extra" not in types
    assert con.execute(
        "SELECT count(*) FROM rejected WHERE stage = 'verify' AND verify_status IS NULL"
    ).fetchall() == [(0,)]
