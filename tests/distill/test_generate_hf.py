"""`distillery generate` with the transformers backend, the prompt reader and the R1-style prompts."""

from __future__ import annotations

import json

import pytest

from curate.errors import InputError
from distill.cli import main
from distill.generate.prompts import MATH_INSTRUCTION, PromptItem, read_prompts
from tests.conftest import shared_file


def test_generate_hf_writes_trace_rows_and_resumes_from_cache(tiny_model, prompts_file, tmp_path, capsys):
    prompts = prompts_file([("What is 2 + 3?", "5"), ("What is 4 + 4?", "8"), ("What is 2 + 3?", "5")])
    out = tmp_path / "out.jsonl"
    command = [
        "generate",
        "--teacher",
        str(tiny_model),
        "--prompts",
        str(prompts),
        "--out",
        str(out),
        "--backend",
        "hf",
        "-n",
        "2",
        "--temperature",
        "0",
        "--max-tokens",
        "6",
        "--batch-size",
        "3",
        "--quiet",
    ]
    assert main(command) == 0
    first = out.read_bytes()
    rows = [json.loads(line) for line in first.splitlines()]
    assert len(rows) == 4  # the repeated problem is sampled once
    assert set(rows[0]) == {
        "id",
        "problem_id",
        "source",
        "problem",
        "reasoning",
        "response",
        "reference",
        "tests",
        "domain",
        "teacher",
        "meta",
    }
    assert rows[0]["problem"] == f"What is 2 + 3?\n\n{MATH_INSTRUCTION}"
    assert [r["meta"]["sample"] for r in rows] == [0, 1, 0, 1]
    assert [r["reference"] for r in rows] == ["5", "5", "8", "8"]
    assert {r["teacher"] for r in rows} == {str(tiny_model)} and {r["domain"] for r in rows} == {"math"}
    assert rows[0]["response"] == rows[1]["response"]  # greedy: the samples agree
    assert all(r["meta"]["completion_tokens"] <= 6 for r in rows)
    assert capsys.readouterr().out.splitlines()[2].split()[:4] == [
        "2",
        "4",
        "0",
        "4",
    ]  # problems samples cached new

    assert main(command) == 0
    assert capsys.readouterr().out.splitlines()[2].split()[:4] == ["2", "4", "4", "0"]
    assert out.read_bytes() == first  # resumed entirely from the cache: same file


def test_cached_rerun_sends_nothing(tiny_model, prompts_file, tmp_path):
    from distill.generate.base import SamplingParams, load_backend
    from distill.generate.cache import RequestCache
    from distill.generate.runner import sample_items

    items = read_prompts(str(prompts_file([("What is 1 + 1?", "2")])))
    backend = load_backend("hf", str(tiny_model), batch_size=4)
    params = SamplingParams(n=3, temperature=1.0, max_tokens=4, seed=7)
    with RequestCache(tmp_path / "c.sqlite") as cache:
        first, stats = sample_items(backend, items, params, cache=cache, progress=False)
        assert (stats.generated, stats.cached) == (3, 0)
        again, stats = sample_items(backend, items, params, cache=cache, progress=False)
        assert (stats.generated, stats.cached) == (0, 3)
        assert [c.text for _, _, c in again] == [c.text for _, _, c in first]
        more, stats = sample_items(backend, items, params, samples=[range(2, 5)], cache=cache, progress=False)
        assert (stats.generated, stats.cached) == (2, 1)  # only samples 3 and 4 are new
        assert [s for _, s, _ in more] == [2, 3, 4]


def test_read_prompts_from_shared_benchmarks():
    math = read_prompts(str(shared_file("math/math500.jsonl")))
    assert len(math) == 500 and {item.domain for item in math} == {"math"}
    assert math[0].reference and math[0].tests is None
    assert math[0].prompt().endswith(MATH_INSTRUCTION)

    code = read_prompts(str(shared_file("code/humaneval.jsonl")))
    assert len(code) == 164 and {item.domain for item in code} == {"code"}
    spec = json.loads(code[0].tests)
    assert spec["kind"] == "assert"
    assert (
        code[0]
        .prompt()
        .endswith(
            f"Complete the Python function `{spec['entry_point']}`. "
            "Give the whole function in one ```python code block."
        )
    )

    stdin = read_prompts(str(shared_file("code/codeforces.jsonl")))
    assert json.loads(stdin[0].tests)["kind"] == "stdin" and "standard input" in stdin[0].prompt()

    aime25 = read_prompts(str(shared_file("bench/aime25.jsonl")))
    assert aime25[0].prompt() == aime25[0].problem  # it already asks for \boxed{}: nothing appended
    gsm8k = read_prompts(str(shared_file("bench/gsm8k_test.jsonl")))
    assert gsm8k[0].reference == "18"


def test_prompt_styles_and_domains():
    choice = PromptItem("Which is a noble gas?\n(A) Iron\n(B) Neon", reference="B", domain="science")
    assert choice.is_choice and "letter of the correct option" in choice.prompt()
    assert choice.prompt("raw") == choice.problem
    call = PromptItem("Double x.", tests=json.dumps({"kind": "call", "fn_name": "double", "cases": []}))
    assert "`double`" in call.prompt()
    with pytest.raises(Exception, match="unknown prompt style"):
        call.prompt("chatml")


def test_read_prompts_names_the_bad_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"problem": "ok", "answer": "1", "domain": "science"}\n{"problem": 5}\n')
    with pytest.raises(InputError, match=r"p.jsonl:2.*problem"):
        read_prompts(str(path))
    path.write_text('{"problem": "ok", "answer": "1", "domain": "science"}\n')
    assert read_prompts(str(path))[0].domain == "science"
