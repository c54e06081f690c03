"""`distillery eval`: benchmark resolution, pass@1 averaged over k samples, per-domain tables."""

from __future__ import annotations

import json

import pytest

from distill.cli import main
from distill.evaluate import BENCHMARKS, EvalError, evaluate, models_table, resolve_bench
from distill.generate.base import SamplingParams
from tests.conftest import shared_file

DOUBLE = json.dumps({"kind": "call", "fn_name": "double", "cases": [{"args": [3], "expected": 6}]})


def test_eval_tiny_model_on_math500_and_humaneval(tiny_model, tmp_path, capsys):
    shared_file("math/math500.jsonl")
    shared_file("code/humaneval.jsonl")
    out = tmp_path / "scores.json"
    samples = tmp_path / "samples.jsonl"
    code = main(
        [
            "eval",
            str(tiny_model),
            "--bench",
            "math500",
            "humaneval",
            "--limit",
            "3",
            "-k",
            "2",
            "--max-tokens",
            "8",
            "--temperature",
            "0.7",
            "--out",
            str(out),
            "--samples",
            str(samples),
            "--quiet",
        ]
    )
    assert code == 0
    report = json.loads(out.read_text())
    assert [(b["name"], b["domain"], b["problems"], b["k"]) for b in report["benches"]] == [
        ("math500", "math", 3, 2),
        ("humaneval", "code", 3, 2),
    ]
    for bench in report["benches"]:
        assert sum(bench["statuses"].values()) == 6 and 0.0 <= bench["pass_at_1"] <= 1.0
    assert set(report["domains"]) == {"math", "code"}
    assert all(d["problems"] == 3 for d in report["domains"].values())
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    assert len(rows) == 12 and all(r["meta"]["verify_status"] for r in rows)
    printed = capsys.readouterr().out
    assert "math500" in printed and "humaneval" in printed and "pass@1" in printed


def test_pass_at_1_is_averaged_over_samples_and_pooled_per_domain(serve, tmp_path):
    math = tmp_path / "mini_math.jsonl"
    math.write_text(
        "".join(json.dumps({"problem": f"P{i}: what is 3 + 4?", "answer": "7"}) + "\n" for i in range(4))
    )
    code = tmp_path / "mini_code.jsonl"
    code.write_text(
        "".join(
            json.dumps({"messages": [{"role": "user", "content": f"C{i}: double x"}], "tests": DOUBLE}) + "\n"
            for i in range(2)
        )
    )

    def answer(body: dict) -> str:
        prompt, sample = body["messages"][0]["content"], body["seed"]  # seed 0: the seed is the sample index
        if prompt.startswith("C"):
            return (
                "```python\ndef double(x):\n    return x * 2\n```" if prompt.startswith("C0") else "no code"
            )
        right = {"P0": True, "P1": sample == 0, "P2": False, "P3": None}[prompt[:2]]
        return "I give up." if right is None else f"The answer is $\\boxed{{{7 if right else 8}}}$."

    _, url = serve(answer=answer)
    report = evaluate(
        "oracle",
        [resolve_bench(f"mini={math}"), resolve_bench(str(code))],
        SamplingParams(n=2, temperature=0.5, max_tokens=32),
        backend="openai",
        backend_options={"base_url": url},
        progress=False,
    )
    by_name = {b.name: b for b in report.benches}
    # per problem: P0 2/2, P1 1/2, P2 0/2, P3 0/2 -> (1 + 0.5 + 0 + 0) / 4
    assert by_name["mini"].pass_at_1 == pytest.approx(0.375)
    assert by_name["mini"].statuses == {"fail": 3, "no_answer": 2, "pass": 3}
    assert by_name["mini_code"].domain == "code" and by_name["mini_code"].pass_at_1 == pytest.approx(0.5)
    assert report.domains == {
        "code": {"problems": 2, "pass@1": 0.5},
        "math": {"problems": 4, "pass@1": 0.375},
    }

    table = models_table({"base": report, "student": report}).splitlines()
    assert table[0].split() == ["model", "code", "math"]
    assert table[2].split() == ["base", "0.500", "0.375"]


def test_resolve_bench(tmp_path):
    data = tmp_path / "data"
    (data / "code").mkdir(parents=True)
    (data / "code" / "humaneval.jsonl").write_text("{}\n")
    bench = resolve_bench("humaneval", data)
    assert (bench.name, bench.domain, bench.path) == ("humaneval", "code", data / "code" / "humaneval.jsonl")
    with pytest.raises(EvalError, match="--data-dir"):
        resolve_bench("aime24", data)
    with pytest.raises(EvalError, match="not one of the names"):
        resolve_bench("nosuchbench", data)
    mine = resolve_bench(f"mine={data / 'code' / 'humaneval.jsonl'}")
    assert (mine.name, mine.domain) == ("mine", None)
    assert set(BENCHMARKS) == {"math500", "aime24", "aime25", "amc23", "gsm8k", "humaneval", "codeforces"}


def test_every_named_benchmark_is_in_the_shared_data():
    for name in BENCHMARKS:
        shared_file(BENCHMARKS[name][0])
        assert resolve_bench(name).path.exists()
