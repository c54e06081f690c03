"""The verify stage: math and code rows checked in one curate run, verdicts in the `verify` view."""

from __future__ import annotations

import json

import pytest

import sql
from curate.errors import CurateError
from curate.pipeline import curate
from curate.stages.verify import Verify
from curate.workspace import Workspace
from tests.conftest import write_jsonl

ADD_TESTS = json.dumps(
    {
        "kind": "call",
        "fn_name": "add",
        "cases": [{"args": [1, 2], "expected": 3}, {"args": [5, 5], "expected": 10}],
    }
)
ONLY_VERIFY = {
    "stages": {
        name: {"enabled": False}
        for name in ("exact_dedup", "near_dedup", "decontaminate", "quality", "split", "select", "shard")
    }
}


def test_math_and_code_rows_are_verified_and_failures_rejected(tmp_path):
    rows = [
        {
            "prompt": "What is 1/2 + 1/4?",
            "response": "<think>3/4</think> The answer is \\boxed{\\frac{3}{4}}.",
            "reference": "0.75",
            "id": "math-pass",
        },
        {
            "prompt": "What is 2 + 2?",
            "response": "<think>hmm</think> \\boxed{5}",
            "reference": "4",
            "id": "math-fail",
        },
        {"prompt": "What is 3 + 3?", "response": "I am not sure.", "reference": "6", "id": "math-no-answer"},
        {
            "prompt": "Write add(a, b).",
            "response": "```python\ndef add(a, b):\n    return a + b\n```",
            "tests": ADD_TESTS,
            "id": "code-pass",
        },
        {
            "prompt": "Write add(a, b) again.",
            "response": "```python\ndef add(a, b):\n    return a - b\n```",
            "tests": ADD_TESTS,
            "id": "code-fail",
        },
        {
            "prompt": "Write add(a, b), cheat.",
            "response": "```python\nimport sys\nsys.exit(0)\n```",
            "tests": ADD_TESTS,
            "id": "code-exit",
        },
        {"prompt": "Tell me a story.", "response": "Once upon a time.", "id": "no-reference"},
        {"prompt": "Compute 7 * 6.", "reference": "42", "id": "prompt-only"},
        {"prompt": "Prove there are infinitely many primes.", "id": "bare-prompt"},
    ]
    data = write_jsonl(tmp_path / "mixed.jsonl", rows)
    curate([str(data)], tmp_path / "ws", ONLY_VERIFY, workers=2, progress=False)
    con = sql.connect(tmp_path / "ws")
    verdicts = dict(
        con.execute(
            "select json_extract_string(t.meta, '$.id'), v.status from verify v join traces t using (row_id)"
        ).fetchall()
    )
    assert verdicts == {
        "math-pass": "pass",
        "math-fail": "fail",
        "math-no-answer": "no_answer",
        "code-pass": "pass",
        "code-fail": "fail",
        "code-exit": "fail",
        "no-reference": "no_reference",
        "prompt-only": "prompt",  # a prompt for generation, not a failed answer
        "bare-prompt": "prompt",  # with nothing to check it against, still a prompt
    }
    kinds = dict(
        con.execute(
            "select status, list(distinct kind) from verify where status = 'pass' group by 1"
        ).fetchall()
    )
    assert sorted(kinds["pass"]) == ["code", "math"]
    kept = {r for (r,) in con.execute("select json_extract_string(meta, '$.id') from kept").fetchall()}
    # a trace that cannot be checked is kept, flagged by its status and counted apart
    assert kept == {"math-pass", "code-pass", "no-reference"}
    assert (
        con.execute(
            "select verify_status from kept where json_extract_string(meta, '$.id') = 'no-reference'"
        ).fetchone()[0]
        == "no_reference"
    )
    reasons = dict(
        con.execute(
            "select json_extract_string(meta, '$.id'), reason from rejected where stage = 'verify'"
        ).fetchall()
    )
    assert reasons["code-exit"] == "fail" and reasons["prompt-only"] == "prompt"
    funnel = dict(con.execute("select stage, flagged from funnel").fetchall())
    assert funnel["verify"] == {"no_reference": 1}
    stage = next(s for s in Workspace.open(tmp_path / "ws").manifest()["stages"] if s["name"] == "verify")
    assert stage["flagged"] == {"no_reference": 1}
    assert (
        con.execute(
            "select extracted from verify v join traces t using (row_id) where json_extract_string(t.meta, '$.id') = 'math-pass'"
        ).fetchone()[0]
        == "\\frac{3}{4}"
    )


def test_keep_option_lets_other_statuses_through(tmp_path):
    data = write_jsonl(
        tmp_path / "p.jsonl", [{"prompt": "Compute 7 * 6.", "response": "I am not sure.", "reference": "42"}]
    )
    config = {"stages": {**ONLY_VERIFY["stages"], "verify": {"keep": ["pass", "no_answer"]}}}
    curate([str(data)], tmp_path / "ws", config, progress=False)
    assert sql.connect(tmp_path / "ws").execute("select count(*) from kept").fetchone()[0] == 1


def test_require_reference_drops_unverifiable_traces(tmp_path):
    rows = [
        {"prompt": "Tell me a story.", "response": "Once upon a time."},
        {"prompt": "Compute 7 * 6.", "response": "\\boxed{42}", "reference": "42"},
    ]
    data = write_jsonl(tmp_path / "p.jsonl", rows)
    config = {"stages": {**ONLY_VERIFY["stages"], "verify": {"require_reference": True}}}
    curate([str(data)], tmp_path / "ws", config, progress=False)
    con = sql.connect(tmp_path / "ws")
    assert con.execute("select reason from rejected").fetchall() == [("no_reference",)]
    assert con.execute("select count(*) from kept").fetchone()[0] == 1


def test_a_prompt_is_never_kept():
    with pytest.raises(CurateError, match="prompt"):
        Verify(keep=["pass", "prompt"])
    with pytest.raises(CurateError, match="unknown status.*passed"):
        Verify(keep=["passed"])
