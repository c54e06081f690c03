"""No correct trace is dropped by a cap before it is checked: dedup removes only identical or
near-identical responses, and the per-problem cap is select's, after verify, preferring passes.

Real data: the Qwen2.5-Math CoT file (100 problems x 8 samples; `score` labels 728 correct)."""

from __future__ import annotations

import pytest

import sql
from curate.pipeline import curate
from tests.conftest import shared_file, write_jsonl

LABELLED = "json_extract_string(meta, '$.score') = 'true'"


@pytest.fixture(scope="module")
def qwen(tmp_path_factory):
    path = shared_file("math/qwen_math_cot_100.jsonl")
    base = tmp_path_factory.mktemp("qwen")
    default = curate([str(path)], base / "default", {"workers": 2}, progress=False)
    capped = curate(
        [str(path)],
        base / "capped",
        {"workers": 2, "stages": {"select": {"max_per_problem": 4}}},
        progress=False,
    )
    return sql.connect(base / "default"), sql.connect(base / "capped"), default, capped


def test_dedup_drops_only_repeated_responses(qwen):
    con, _, _, _ = qwen
    dedup_reasons = {
        r for (r,) in con.execute("select distinct reason from rejected where stage like '%dedup'").fetchall()
    }
    assert dedup_reasons <= {"duplicate", "near_duplicate"}
    # every labelled-correct trace a dedup stage dropped repeats a response its cluster kept
    orphans = con.execute(
        f"""select count(*) from rejected r
            where r.stage like '%dedup' and {LABELLED.replace("meta", "r.meta")}
              and not exists (select 1 from clusters c where c.row_id = r.row_id and c.stage = r.stage
                              and c.representative_row_id <> r.row_id)"""
    ).fetchone()[0]
    assert orphans == 0


def test_every_problem_with_a_correct_trace_keeps_its_distinct_correct_traces(qwen):
    con, _, _, _ = qwen
    total, correct = con.execute(
        f"select count(*), count(*) filter (where {LABELLED}) from traces"
    ).fetchone()
    assert (total, correct) == (800, 728)
    lost = con.execute(
        f"""select count(*) from (select problem_id from traces where {LABELLED} group by problem_id)
            where problem_id not in (select problem_id from kept)"""
    ).fetchone()[0]
    assert lost == 0
    # by default nothing is capped: every verified trace that survived dedup and quality is kept
    assert con.execute("select count(*) from rejected where stage = 'select'").fetchone()[0] == 0
    passed = con.execute(
        "select count(*) from verify where status = 'pass' and row_id in (select row_id from kept)"
    ).fetchone()[0]
    assert passed == con.execute("select count(*) from kept").fetchone()[0]


def test_the_cap_after_verify_keeps_the_best_passing_traces(qwen):
    default, capped, _, _ = qwen
    available = dict(default.execute("select problem_id, count(*) from kept group by 1").fetchall())
    kept = dict(capped.execute("select problem_id, count(*) from kept group by 1").fetchall())
    assert kept == {p: min(4, n) for p, n in available.items()}
    reasons = capped.execute("select distinct reason from rejected where stage = 'select'").fetchall()
    assert reasons == [("per_problem_cap",)]


def test_the_cap_prefers_passing_traces_over_unverified_ones(tmp_path):
    problem = "What is 6 times 7?"
    checked = write_jsonl(
        tmp_path / "checked.jsonl",
        [
            {
                "problem": problem,
                "response": "Six sevens make forty-two, so the answer is $\\boxed{42}$.",
                "answer": "42",
            }
        ],
    )
    unchecked = write_jsonl(tmp_path / "unchecked.jsonl", [{"problem": problem, "response": "$\\boxed{42}$"}])
    config = {"stages": {"select": {"max_per_problem": 1}}}
    curate([str(unchecked), str(checked)], tmp_path / "ws", config, progress=False)
    con = sql.connect(tmp_path / "ws")
    # the unverified trace is shorter (preferred by default), but the passing one wins the cap
    assert con.execute("select verify_status from kept").fetchall() == [("pass",)]
    assert con.execute("select reason from rejected").fetchall() == [("per_problem_cap",)]
