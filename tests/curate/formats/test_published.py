"""Every published dataset shape through `distillery curate` with the default config.

`data/` holds one hand-written file per dataset, in the shape its card and publishing project give
(field names, nesting, JSON-in-a-string fields, LiveCodeBench's compressed private tests). One
curate run over all of them; each dataset's rows are then checked column by column, the verify
statuses against the dataset's own correctness labels, and the ledger per input.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import sql
from curate.pipeline import curate
from curate.verify.code import CodeVerifier

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """A workspace made by one default `curate` run over every fixture (verl's as Parquet, its
    published container)."""
    root = tmp_path_factory.mktemp("published")
    inputs = []
    for path in sorted(DATA.glob("*.jsonl")):
        if path.stem == "verl_rl":
            rows = [json.loads(line) for line in path.read_text().splitlines()]
            pq.write_table(pa.Table.from_pylist(rows), root / "verl_rl.parquet")
            inputs.append(str(root / "verl_rl.parquet"))
        else:
            inputs.append(str(shutil.copy(path, root / path.name)))
    curate(inputs, root / "ws", progress=False)
    return root / "ws"


def rows_of(ws, source: str) -> list[dict]:
    """Every ingested row of one input with where it ended and its verify status."""
    con = sql.connect(ws)
    cursor = con.execute(
        """
        SELECT t.*, coalesce(r.stage, 'kept') AS ended, r.reason, v.status
        FROM traces t LEFT JOIN rejected r USING (row_id) LEFT JOIN verify v USING (row_id)
        WHERE t.source = ? ORDER BY t.row_id
        """,
        [source],
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def test_the_ledger_balances_on_every_input(ws):
    con = sql.connect(ws)
    per_source = con.execute(
        """
        SELECT t.source, count(*) AS traces,
               count(*) FILTER (WHERE k.row_id IS NOT NULL) AS kept,
               count(*) FILTER (WHERE r.row_id IS NOT NULL) AS rejected
        FROM traces t LEFT JOIN kept k USING (row_id) LEFT JOIN rejected r USING (row_id)
        GROUP BY 1 ORDER BY 1
        """
    ).fetchall()
    assert len(per_source) == len(list(DATA.glob("*.jsonl")))
    for source, traces, kept, rejected in per_source:
        assert traces == kept + rejected, f"{source}: {traces} rows, {kept} kept + {rejected} rejected"


def test_openr1_two_generations_are_two_rows_and_statuses_match_math_verify(ws):
    rows = rows_of(ws, "openr1_math_220k")
    assert len(rows) == 5, "2 + 3 generations; the 2-turn messages list is not split"
    labels = [True, False, True, True, False]  # correctness_math_verify of the fixture
    assert [r["status"] == "pass" for r in rows] == labels
    assert all(r["reasoning"] and r["reference"] in ("21", "2") for r in rows)
    assert [r["subset"] for r in rows] == ["olympiads"] * 2 + ["cn_k12"] * 3
    first = json.loads(rows[0]["meta"])
    assert first["correctness_math_verify"] is True and first["is_reasoning_complete"] is True
    assert [m["role"] for m in first["messages"]] == ["user", "assistant"], "messages kept whole"
    assert {r["teacher"] for r in rows} == {"DeepSeek-R1"}


def test_openr1_raw_correctness_object_is_split_per_generation_and_agrees_with_verify(ws):
    rows = rows_of(ws, "openr1_math_raw")
    assert len(rows) == 5, "3 + 2 generations"
    verdicts = [json.loads(r["meta"])["correctness"] for r in rows]
    assert [v["math_verify_reparsed_answer"] for v in verdicts] == [True, False, True, True, False]
    assert [v["llama_verification"] for v in verdicts] == [True, False, True, True, False]
    assert [r["status"] == "pass" for r in rows] == [v["math_verify_reparsed_answer"] for v in verdicts]
    assert [r["reference"] for r in rows] == ["54"] * 3 + ["\\frac{1}{2}"] * 2, (
        "empty answer: reparsed_answers[0]"
    )
    metas = [json.loads(r["meta"]) for r in rows]
    assert [m["api_metadata"]["completion_tokens"] for m in metas] == [40, 38, 35, 30, 20]
    assert metas[3]["reparsed_answers"] == ["\\frac{1}{2}", "B"] and metas[0]["problem_is_valid"] == "Yes"
    assert {r["teacher"] for r in rows} == {"DeepSeek-R1"} and [r["subset"] for r in rows][-1] == "cn_k12"


def test_openmathreasoning_generations_stay_apart_and_agree_with_the_answer(ws):
    rows = rows_of(ws, "openmathreasoning")
    assert len({r["problem_id"] for r in rows}) == 1 and len({r["id"] for r in rows}) == 3
    assert [r["status"] for r in rows] == ["pass", "pass", "fail"]
    assert [r["ended"] for r in rows] == ["kept", "kept", "verify"], "no generation dropped as a duplicate"
    assert all(r["reference"] == "28" and r["teacher"] == "DeepSeek-R1" and r["reasoning"] for r in rows)
    assert json.loads(rows[0]["meta"])["inference_mode"] == "cot"


@pytest.mark.parametrize(
    ("source", "teachers"),
    [
        ("s1k", ["gemini-2.0-flash-thinking-exp"]),
        ("s1k_1_1", ["DeepSeek-R1", "gemini-2.0-flash-thinking-exp"]),
    ],
)
def test_s1k_one_row_per_teacher_with_the_solution_as_reference(ws, source, teachers):
    rows = rows_of(ws, source)
    assert [r["teacher"] for r in rows] == teachers
    assert all(r["reference"].endswith("\\boxed{9}$.") and r["reasoning"] and r["response"] for r in rows)
    assert all(r["status"] == "pass" and r["ended"] == "kept" for r in rows)
    if source == "s1k_1_1":
        metas = [json.loads(r["meta"]) for r in rows]
        assert metas[0]["deepseek_grade"] == "Yes" and "gemini_grade" not in metas[0]
        assert metas[1]["gemini_grade"] == "Yes" and "deepseek_grade" not in metas[1]


def test_openthoughts_metadata_math_reference_and_code_tests(ws):
    math_row, code_row = rows_of(ws, "openthoughts_metadata")
    assert math_row["reasoning"].startswith("15% of 80") and "\\boxed{12}" in math_row["reference"]
    assert code_row["reference"] is None and json.loads(code_row["tests"])["kind"] == "stdin"
    assert (math_row["status"], code_row["status"]) == ("pass", "pass")
    assert (math_row["subset"], code_row["subset"]) == ("olympiads", "apps")


@pytest.mark.parametrize(
    ("source", "kinds"),
    [
        ("codeforces_cots", ["stdin"]),
        ("primeintellect", ["stdin", "call"]),
        ("mbpp_sanitized", ["assert"]),
        ("am_distill", [None, "assert"]),
        ("openthoughts_metadata", [None, "stdin"]),
    ],
)
def test_code_sets_with_solutions_pass_their_converted_tests(ws, source, kinds):
    rows = rows_of(ws, source)
    assert [json.loads(r["tests"])["kind"] if r["tests"] else None for r in rows] == kinds
    assert all(r["status"] == "pass" and r["ended"] == "kept" for r in rows)


def test_mbpp_test_imports_become_the_prelude(ws):
    (row,) = rows_of(ws, "mbpp_sanitized")
    assert json.loads(row["tests"])["prelude"] == "from math import sqrt"


def test_am_sample_answer_tag_and_teacher(ws):
    math_row, code_row = rows_of(ws, "am_distill")
    assert math_row["reference"] == "5" and math_row["status"] == "pass"
    assert math_row["teacher"] == code_row["teacher"] == "DeepSeek-R1"
    assert json.loads(code_row["tests"])["entry_point"] == "double"


def test_kodcode_tests_are_a_pytest_spec_and_the_solution_is_not_a_reference(ws):
    (row,) = rows_of(ws, "kodcode")
    spec = json.loads(row["tests"])
    assert spec["kind"] == "pytest" and "from solution import is_palindrome" in spec["code"]
    assert row["reference"] is None and row["reasoning"] == "Compare the string with its reverse."
    assert row["teacher"] == "DeepSeek-R1" and row["subset"] == "Prefill"
    assert row["status"] == "pass" and row["ended"] == "kept", "R1's answer passes KodCode's pytest tests"


def test_opencodereasoning_trace_and_a_split_1_row_rejected_with_its_source(ws):
    good, placeholder = rows_of(ws, "opencodereasoning")
    assert (
        good["reasoning"] == "Read the line, reverse with slicing, print."
        and good["subset"] == "code_contests"
    )
    assert good["ended"] == "kept" and good["status"] == "no_reference"
    assert (placeholder["ended"], placeholder["reason"]) == ("ingest", "malformed")
    assert placeholder["source"] == "opencodereasoning", "a malformed row keeps its file's source"


@pytest.mark.parametrize("source", ["verl_rl", "livecodebench", "deepcoder"])
def test_prompt_sets_keep_problem_reference_and_tests(ws, source):
    rows = rows_of(ws, source)
    assert rows and all(r["response"] is None and r["status"] == "prompt" for r in rows)
    assert all(r["reference"] or r["tests"] for r in rows)


def test_prompt_set_tests_pass_a_correct_solution(ws):
    """The converted specs of the prompt-only sets run: a correct solution passes, a wrong one fails."""
    by_source = {s: rows_of(ws, s) for s in ("verl_rl", "livecodebench", "deepcoder")}
    math_row, code_row = by_source["verl_rl"]
    assert math_row["reference"] == "49" and math_row["subset"] == "DeepScaleR"
    stdin_lcb, call_lcb = by_source["livecodebench"]
    functional, stdin_dc = by_source["deepcoder"]
    assert len(json.loads(stdin_lcb["tests"])["cases"]) == 3, "public + decoded private cases"
    solutions = [
        (code_row, "a, b = map(int, input().split())\nprint(a + b)", "print(0)"),
        (stdin_lcb, "print(2 * int(input()))", "print(int(input()))"),
        (call_lcb, "class Solution:\n    def countEven(self, nums: List[int]) -> int:\n"
                   "        return sum(n % 2 == 0 for n in nums)", "class Solution:\n    def countEven(self, nums):\n        return 0"),
        (functional, "class Solution:\n    def largest(self, nums: List[int]) -> int:\n        return max(nums)",
         "class Solution:\n    def largest(self, nums):\n        return nums[0]"),
        (stdin_dc, "a, b = map(int, input().split())\nprint(a * b)", "print(6)"),
    ]  # fmt: skip
    items = [{"tests": row["tests"], "code": code} for row, *codes in solutions for code in codes]
    with CodeVerifier(workers=1) as verifier:
        statuses = [verdict.status for verdict in verifier.map(items)]
    assert statuses == ["pass", "fail"] * len(solutions)


def test_codeforces_limits_are_in_the_spec_and_the_verifier_applies_them(ws):
    (row,) = rows_of(ws, "codeforces_cots")
    spec = json.loads(row["tests"])
    assert (spec["time_limit_s"], spec["memory_mb"]) == (1.0, 256), "the problem's 1 s / 256 MB"
    slow = "import time\ntime.sleep(2.5)\nn = int(input())\nprint(max(map(int, input().split())))"
    unlimited = json.dumps({k: v for k, v in spec.items() if k not in ("time_limit_s", "memory_mb")})
    with CodeVerifier(workers=1, time_limit_s=10) as verifier:
        judged, default = verifier.map(
            [{"tests": row["tests"], "code": slow}, {"tests": unlimited, "code": slow}]
        )
    assert (judged.status, default.status) == ("timeout", "pass"), "1 s from the problem, 10 s without it"


@pytest.mark.parametrize(
    ("source", "teacher"),
    [
        ("openthoughts_114k", "DeepSeek-R1"),
        ("bespoke_stratos_17k", "DeepSeek-R1"),
        ("openthoughts3", None),
        ("light_r1_sft", None),
        ("mixture_of_thoughts", None),
    ],
)
def test_traces_without_a_reference_are_kept_unverified(ws, source, teacher):
    (row,) = rows_of(ws, source)
    assert row["reasoning"] and row["response"] and row["reference"] is None
    assert (row["status"], row["ended"], row["teacher"]) == ("no_reference", "kept", teacher)


@pytest.mark.parametrize("source", ["numinamath_cot", "limo"])
def test_worked_solution_sets_are_kept_without_think_tags(ws, source):
    (row,) = rows_of(ws, source)
    assert (
        row["reasoning"] is None and row["reference"] and row["status"] == "pass" and row["ended"] == "kept"
    )
