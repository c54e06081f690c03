"""Rejection sampling: problems with no passing sample are resampled, n at a time, up to the budget;
every attempt is kept with its round and verdict."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from distill.cli import main
from distill.generate.base import Backend, Completion, Emit, GenerationError, Request, SamplingParams
from distill.generate.cache import RequestCache
from distill.generate.prompts import PromptItem
from distill.generate.rejection import rejection_sample

CODE_TESTS = json.dumps(
    {
        "kind": "call",
        "fn_name": "double",
        "cases": [{"args": [2], "expected": 4}, {"args": [5], "expected": 10}],
    }
)


class ScriptedTeacher(Backend):
    """Answers problem p correctly from sample index `solves_at[p]` on (never when absent)."""

    name = "scripted"

    def __init__(self, solves_at: dict[str, int]):
        super().__init__("scripted-teacher")
        self.solves_at = solves_at
        self.asked: list[tuple[str, int]] = []

    def generate(self, requests: Sequence[Request], emit: Emit) -> None:
        for i, request in enumerate(requests):
            problem = request.messages[0][1].split("\n\n")[0]
            self.asked.append((problem, request.sample))
            right = request.sample >= self.solves_at.get(problem, 10**9)
            if problem.startswith("Double"):
                body = "x * 2" if right else "x + 2"
                text = f"<think>\ndouble it\n</think>\n\n```python\ndef double(x):\n    return {body}\n```"
            else:
                text = f"<think>\nadd\n</think>\n\nThe answer is $\\boxed{{{7 if right else 8}}}$."
            emit(i, Completion(text, "stop"))


def test_unsolved_problems_are_resampled_up_to_the_budget(tmp_path):
    items = [
        PromptItem("A: 3 + 4?", reference="7"),
        PromptItem("B: 3 + 4?", reference="7"),
        PromptItem("C: 3 + 4?", reference="7"),
        PromptItem("D: 3 + 4?", reference="7"),
        PromptItem("Double x.", tests=CODE_TESTS, domain="code"),
        PromptItem("E: no reference"),
    ]
    teacher = ScriptedTeacher({"A: 3 + 4?": 0, "B: 3 + 4?": 1, "C: 3 + 4?": 3, "Double x.": 2})
    params = SamplingParams(n=2, max_tokens=16)
    with RequestCache(tmp_path / "cache.sqlite") as cache:
        rows, rounds, stats = rejection_sample(teacher, items, params, budget=5, cache=cache, progress=False)

    per_problem = {}
    for row in rows:
        per_problem.setdefault(row["problem"].split("\n\n")[0], []).append(
            (row["meta"]["sample"], row["meta"]["round"], row["meta"]["verify_status"])
        )
    assert per_problem["A: 3 + 4?"] == [(0, 0, "pass"), (1, 0, "pass")]
    assert per_problem["B: 3 + 4?"] == [(0, 0, "fail"), (1, 0, "pass")]
    assert per_problem["C: 3 + 4?"] == [(0, 0, "fail"), (1, 0, "fail"), (2, 1, "fail"), (3, 1, "pass")]
    assert per_problem["D: 3 + 4?"] == [
        (0, 0, "fail"),
        (1, 0, "fail"),
        (2, 1, "fail"),
        (3, 1, "fail"),
        (4, 2, "fail"),
    ]  # the budget (5) caps the last round at one sample
    assert per_problem["Double x."] == [(0, 0, "fail"), (1, 0, "fail"), (2, 1, "pass"), (3, 1, "pass")]
    assert per_problem["E: no reference"] == [(0, 0, "no_reference"), (1, 0, "no_reference")]
    assert [(r.round, r.problems, r.samples, r.passed, r.solved, r.unsolved) for r in rounds] == [
        (0, 6, 12, 3, 2, 3),
        (1, 3, 6, 3, 2, 1),
        (2, 1, 1, 0, 0, 1),
    ]
    assert stats.generated == len(rows) == 19 and len(teacher.asked) == 19
    assert all(row["teacher"] == "scripted-teacher" for row in rows)

    # Rerunning replays every round from the cache: nothing is asked again, same rows.
    again = ScriptedTeacher(teacher.solves_at)
    with RequestCache(tmp_path / "cache.sqlite") as cache:
        rows_again, _, stats = rejection_sample(again, items, params, budget=5, cache=cache, progress=False)
    assert again.asked == [] and stats.cached == 19 and rows_again == rows


def test_budget_below_n_is_an_error():
    with pytest.raises(GenerationError, match="budget"):
        rejection_sample(ScriptedTeacher({}), [PromptItem("x", reference="1")], SamplingParams(n=4), budget=2)


def test_cli_rejection_with_a_tiny_model(tiny_model, prompts_file, tmp_path, capsys):
    prompts = prompts_file([("What is 2 + 3?", "5"), ("What is 1 + 1?", "2")])
    out = tmp_path / "attempts.jsonl"
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
        "--budget",
        "4",
        "--max-tokens",
        "4",
        "--temperature",
        "1.0",
        "--quiet",
    ]
    assert main(command) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    # An untrained model never passes: both problems use the whole budget, over two rounds.
    assert [(r["meta"]["sample"], r["meta"]["round"]) for r in rows] == [(0, 0), (1, 0), (2, 1), (3, 1)] * 2
    assert {r["meta"]["verify_status"] for r in rows} <= {"fail", "no_answer"}
    printed = capsys.readouterr().out
    assert "round" in printed and "unsolved" in printed
