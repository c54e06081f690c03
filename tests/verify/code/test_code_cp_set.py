"""The C++/Java problem set (issue 21): every problem is well formed, and a sample of it goes through
`distillery verify code` and the curate `verify` stage (the whole set runs in
`bench/code_verify_bench.py --only languages`: compiling 216 programs takes minutes)."""

from __future__ import annotations

import json

import pytest

import sql
from curate.pipeline import curate
from curate.verify.code.languages import missing_tool
from curate.verify.code.specs import parse_spec
from distill.cli import main
from tests.conftest import write_jsonl
from tests.verify.code.cp_set import PROBLEMS

BY_NAME = {problem.name: problem for problem in PROBLEMS}
FENCES = {"cpp": "cpp", "java": "java"}
needs_compilers = pytest.mark.skipif(
    missing_tool("cpp") is not None or missing_tool("java") is not None, reason="needs g++ and a JDK"
)


def test_the_set_is_well_formed():
    assert len(PROBLEMS) >= 50 and len(BY_NAME) == len(PROBLEMS)
    assert sum(problem.checker is not None for problem in PROBLEMS) >= 5
    for problem in PROBLEMS:
        for language in FENCES:
            spec = parse_spec(problem.spec(language))
            assert len(spec["cases"]) >= 3 and spec["language"] == language
            assert problem.mutant(language) != problem.solution(language)


def rows(names: list[str]) -> list[dict]:
    out = []
    for name in names:
        problem = BY_NAME[name]
        for language, fence in FENCES.items():
            spec = {key: value for key, value in problem.spec(language).items() if key != "language"}
            for variant in ("solution", "mutant"):
                code = problem.solution(language) if variant == "solution" else problem.mutant(language)
                out.append({"id": f"{name}/{language}/{variant}", "problem": name, "tests": json.dumps(spec),
                            "response": f"Solution:\n```{fence}\n{code}```\n"})  # fmt: skip
    return out


@needs_compilers
def test_solutions_pass_and_mutants_fail_through_distillery_verify_code(tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", rows(["split_sum"]))
    assert (
        main(
            ["verify", "code", "--input", str(source), "--out", str(tmp_path / "out.jsonl"), "--workers", "2"]
        )
        == 0
    )
    verdicts = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    for verdict in verdicts:
        wanted = "pass" if verdict["id"].endswith("/solution") else "fail"
        assert verdict["status"] == wanted, (verdict["id"], verdict["detail"])
    checked = [v for v in verdicts if v["id"] == "split_sum/cpp/solution"][0]
    assert "compile_seconds" in json.loads(checked["detail"])


@needs_compilers
def test_the_verify_stage_runs_cpp_traces(tmp_path):
    traces = [
        {"prompt": f"Problem {row['problem']}", **row}
        for row in rows(["any_divisor"])
        if "/cpp/" in row["id"]
    ]
    off = ("exact_dedup", "near_dedup", "decontaminate", "quality", "split", "select", "shard")
    config = {"stages": {name: {"enabled": False} for name in off}}
    curate(
        [str(write_jsonl(tmp_path / "traces.jsonl", traces))],
        tmp_path / "ws",
        config,
        workers=2,
        progress=False,
    )
    con = sql.connect(tmp_path / "ws")
    verdicts = dict(
        con.execute(
            "select json_extract_string(t.meta, '$.id'), v.status from verify v join traces t using (row_id)"
        ).fetchall()
    )
    assert verdicts == {"any_divisor/cpp/solution": "pass", "any_divisor/cpp/mutant": "fail"}


@pytest.mark.skipif(missing_tool("cpp") is not None, reason="needs g++")
def test_judge_programs_of_the_set_decide(verifier):
    """The C++ checker (testlib's convention) and the C++ interactor of the set, on C++ answers."""
    names = ["pair_with_sum", "guess_number"]
    items = [row for row in rows(names) if "/cpp/" in row["id"]]
    verdicts = verifier.map({"tests": row["tests"], "response": row["response"]} for row in items)
    for row, verdict in zip(items, verdicts, strict=True):
        wanted = "pass" if row["id"].endswith("/solution") else "fail"
        assert verdict.status == wanted, (row["id"], verdict.detail)
    assert sum(problem.interactor is not None for problem in PROBLEMS) >= 1
