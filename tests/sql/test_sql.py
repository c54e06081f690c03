"""The SQL views and the `distillery sql` command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import sql
from curate.errors import CurateError
from curate.pipeline import curate
from tests.conftest import write_jsonl

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
