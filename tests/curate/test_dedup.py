"""exact_dedup and near_dedup as pipeline stages: decisions, representatives, lineage, determinism."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

import sql
from curate.errors import CurateError
from curate.pipeline import curate
from curate.readers import resolve_inputs
from curate.stage import run_stages
from curate.stages import PIPELINE, Ingest
from curate.stages.exact_dedup import ExactDedup
from curate.stages.near_dedup import NearDedup
from curate.stages.normalize import Normalize
from curate.workspace import Workspace
from tests.conftest import shared_file, write_jsonl

LONG = (
    "A rectangular band formation is a formation with $m$ band members in each of $r$ rows, where $m$ "
    "and $r$ are integers. A particular band has less than 100 band members. The director arranges them "
    "in a rectangular formation and finds that he has two members left over. If he increases the number "
    "of members in each row by 1 and reduces the number of rows by 2, there are exactly enough places. "
    "What is the largest number of members the band could have?"
)
OTHER = (
    "Let $f(x) = 3x^2 - 5$ for every real $x$. Compute the value of $f(f(1))$ and explain why the "
    "function is even, then state the minimum value that $f$ takes on the interval from 0 to 4."
)


def run(tmp_path: Path, records: list[dict], *stages) -> sql.duckdb.DuckDBPyConnection:
    """Ingest records, normalize, run `stages`; check the ledger balances; return a SQL connection."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    inputs = resolve_inputs([str(write_jsonl(tmp_path / "rows.jsonl", records))])
    ws = Workspace.open(tmp_path / "ws", create=True)
    run_stages(ws, [Ingest(inputs), Normalize(), *stages], progress=False)
    con = sql.connect(ws.root)
    kept = [r for (r,) in con.execute("SELECT row_id FROM kept").fetchall()]
    rejected = [r for (r,) in con.execute("SELECT row_id FROM rejected").fetchall()]
    assert sorted(kept + rejected) == list(range(len(records))), "every row kept or rejected once"
    return con


def decisions(con) -> dict[int, str | None]:
    """row_id -> reason (None when kept)."""
    kept = {r: None for (r,) in con.execute("SELECT row_id FROM kept").fetchall()}
    return {**kept, **dict(con.execute("SELECT row_id, reason FROM rejected").fetchall())}


def problem(text: str, **fields) -> dict:
    return {"problem": text, **fields}


def test_exact_dedup_collapses_formatting_variants(tmp_path):
    records = [
        problem(OTHER),
        problem("Problem: " + LONG.replace("$m$", "$m$ ").upper()),
        problem(LONG + "\nPlease reason step by step, and put your final answer within \\boxed{}."),
        problem(LONG.replace("'", "\u2019").replace("  ", " ")),
        problem(LONG.replace("by 2", "by 3")),  # a changed number: another problem
    ]
    con = run(tmp_path, records, ExactDedup())
    assert decisions(con) == {0: None, 1: None, 2: "duplicate", 3: "duplicate", 4: None}
    lineage = con.execute(
        "SELECT row_id, cluster_id, representative_row_id, kept FROM clusters "
        "WHERE stage = 'exact_dedup' ORDER BY row_id"
    ).fetchall()
    assert lineage == [(1, 1, 1, True), (2, 1, 1, False), (3, 1, 1, False)]
    detail = con.execute("SELECT detail FROM rejected WHERE row_id = 2").fetchone()[0]
    assert "row 1" in detail


def test_representative_and_traces_per_problem(tmp_path):
    records = [
        problem(LONG),  # bare prompt, first in input order
        problem(LONG, response="Answer 74, no reference."),
        problem(LONG, response="Long derivation ... so $\\boxed{74}$.", reference="74"),
        problem(LONG, response="Long derivation ... so $\\boxed{74}$.", reference="74"),  # identical trace
        problem(LONG, response="Another way: $\\boxed{74}$.", reference="74"),
        problem(LONG, response="A third way: $\\boxed{74}$.", reference="74"),
    ]
    con = run(tmp_path, records, ExactDedup())
    # verifiable rows first (2, 4, 5 by row_id), then the one without reference, then the bare
    # prompt; every distinct trace survives (a cap per problem is select's, after verify)
    assert decisions(con) == {0: "duplicate", 1: None, 2: None, 3: "duplicate", 4: None, 5: None}
    (rep,) = {r for (r,) in con.execute("SELECT DISTINCT representative_row_id FROM clusters").fetchall()}
    assert rep == 2


def test_exact_dedup_on_problem_and_response(tmp_path):
    records = [
        problem(LONG, response="one"),
        problem(LONG, response="one"),
        problem(LONG, response="two"),
        problem(LONG, response="three"),
    ]
    con = run(tmp_path, records, ExactDedup(key="problem+response"))
    assert decisions(con) == {0: None, 1: "duplicate", 2: None, 3: None}


def test_bad_options_are_user_errors():
    with pytest.raises(CurateError, match="option key must be one of problem, problem\\+response"):
        ExactDedup(key="response")
    with pytest.raises(CurateError, match="max_traces was removed.*max_per_problem"):
        ExactDedup(max_traces=4)
    with pytest.raises(CurateError, match="max_traces was removed"):
        NearDedup(max_traces=4)
    with pytest.raises(CurateError, match="unknown option.*thresold"):
        NearDedup(thresold=0.5)
    with pytest.raises(CurateError, match="option num_perm must be a int"):
        NearDedup(num_perm="many")
    with pytest.raises(CurateError, match="bands"):
        NearDedup(bands=10)
    with pytest.raises(CurateError, match="threshold"):
        NearDedup(threshold=1.5)


def test_near_dedup_truncation_and_changed_numbers(tmp_path):
    truncated = LONG.rsplit(" What is", 1)[0]
    changed = LONG.replace("less than 100", "less than 120")
    records = [
        problem(OTHER),
        problem(truncated),
        problem(LONG),
        problem(changed),
        problem(LONG.replace("A rectangular band formation", "A band formation")),
    ]
    con = run(tmp_path, records, NearDedup())
    # the complete statement is the representative; the changed number stays a problem of its own
    assert decisions(con) == {0: None, 1: "near_duplicate", 2: None, 3: None, 4: "near_duplicate"}
    rows = con.execute(
        "SELECT row_id, representative_row_id, similarity, kept FROM clusters ORDER BY row_id"
    ).fetchall()
    assert [(r, rep, kept) for r, rep, _, kept in rows] == [(1, 2, False), (2, 2, True), (4, 2, False)]
    similarity = {r: s for r, _, s, _ in rows}
    assert similarity[2] == 1.0 and 0.0 < similarity[1] < 1.0 and 0.0 < similarity[4] < 1.0

    con = run(tmp_path / "plain", records, NearDedup(math_aware=False, threshold=0.6))
    assert decisions(con)[3] == "near_duplicate"


def test_near_dedup_keeps_distinct_traces_and_drops_near_identical_ones(tmp_path):
    solution = " ".join(f"step {i}: we expand the product and simplify the terms again." for i in range(30))
    records = [
        problem(LONG, response=solution + " $\\boxed{74}$", reference="74"),
        problem("Problem: " + LONG, response=solution + " So the answer is $\\boxed{74}$.", reference="74"),
        problem(LONG + " Let's think step by step.", response="Short: 74.", reference="74"),
        problem(LONG.rsplit(" What is", 1)[0], response="Different reasoning entirely, 74.", reference="74"),
    ]
    con = run(tmp_path, records, NearDedup())
    assert decisions(con) == {0: None, 1: "near_duplicate", 2: None, 3: None}


def test_signatures_are_compact_parquet(tmp_path):
    con = run(
        tmp_path, [problem(LONG), problem(OTHER), problem(LONG + " Show your work.")], NearDedup(num_perm=64)
    )
    del con
    (folder,) = (tmp_path / "ws" / "stages").glob("*_near_dedup")
    table = pq.read_table(folder / "signatures.parquet")
    assert table.num_rows == 2  # one signature per distinct normalised problem
    signature = table.schema.field("signature").type
    assert signature.list_size == 64 and str(signature.value_type) == "uint32"


def test_reruns_are_byte_identical_and_reused(tmp_path):
    records = [problem(LONG), problem(LONG.rsplit(" What is", 1)[0]), problem(OTHER), problem(LONG.upper())]
    config = {
        "stages": {name: {"enabled": False} for name in PIPELINE if name not in ("exact_dedup", "near_dedup")}
    }
    outputs = []
    for attempt in ("a", "b"):
        data = write_jsonl(tmp_path / "rows.jsonl", records)
        results = curate([str(data)], tmp_path / attempt, config, progress=False)
        assert [r["name"] for r in results] == ["ingest", "exact_dedup", "near_dedup"]
        files = sorted(p for p in (tmp_path / attempt).rglob("*.parquet"))
        outputs.append({p.relative_to(tmp_path / attempt): p.read_bytes() for p in files})
    assert outputs[0] == outputs[1]
    again = curate([str(data)], tmp_path / "b", config, progress=False)
    assert all(r.get("reused") for r in again)


def test_real_overlap_between_math_and_aime_train(tmp_path):
    math_train = shared_file("problems/math_train.jsonl")
    aime_train = shared_file("problems/aime_train.jsonl")
    ws = Workspace.open(tmp_path / "ws", create=True)
    inputs = resolve_inputs([str(math_train), str(aime_train)])
    run_stages(ws, [Ingest(inputs), Normalize(), ExactDedup(), NearDedup()], progress=False)
    con = sql.connect(ws.root)
    funnel = dict(con.execute("SELECT stage, dropped FROM funnel").fetchall())
    assert funnel["exact_dedup"] >= 288  # the shared data's README: 288 exact matches between the files
    assert funnel["near_dedup"] >= 40
    # row_id = line - 1; aime_train rows follow the 7474 of math_train
    lineage = dict(con.execute("SELECT row_id, representative_row_id FROM clusters").fetchall())
    # the same AIME problem, "1/29" in MATH and "$\\frac{1}{29}$" in the AIME file
    aime_1_29, math_1_29 = 7474 + 437, 5401
    assert lineage[aime_1_29] == lineage[math_1_29]
    # two MATH problems that differ in one word ("radius", "center") stay two problems
    assert 259 not in lineage and 619 not in lineage
    # every removed row points at a kept representative of its cluster
    orphans = con.execute(
        "SELECT count(*) FROM clusters c WHERE NOT kept AND c.representative_row_id NOT IN "
        "(SELECT row_id FROM clusters WHERE kept AND stage = c.stage)"
    ).fetchone()[0]
    assert orphans == 0


def test_a_truncated_copy_does_not_bridge_two_problems(tmp_path):
    setup = (
        "A sequence is defined by $a_1 = 5$ and $a_{k+1} = a_k^2 - 2 a_k + 7$ for every positive integer "
        "$k$, and a second sequence satisfies $b_k = a_k + 3$ for all $k$ in the same range of indices."
    )
    records = [
        problem(setup + " Find the remainder when $b_{10}$ is divided by 13."),
        problem(setup),  # truncated: a copy of both problems below
        problem(setup + " Find the remainder when $b_{10}$ is divided by 17."),
    ]
    con = run(tmp_path, records, NearDedup())
    assert decisions(con) == {0: None, 1: "near_duplicate", 2: None}
