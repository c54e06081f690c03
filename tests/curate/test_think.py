"""curate.think: one rule splits reasoning from answer, the same in Python and in Polars, and a
response with two `</think>` reaches the shards with every character."""

from __future__ import annotations

import random

import polars as pl
import pyarrow.parquet as pq
import pytest

from curate.pipeline import curate
from curate.think import Parts, answer_expr, reasoning_expr, split_reasoning, unclosed_expr
from curate.verify.math.extract import extract_answer
from curate.workspace import Workspace
from tests.conftest import write_jsonl

CASES = [
    ("<think>a</think>b", "a", "b", True),
    ("a</think>b", "a", "b", True),  # R1's chat template puts <think> in the prompt
    ("<think>never closed", "never closed", "", False),
    ("<|begin_of_thought|>t<|end_of_thought|><|begin_of_solution|>s<|end_of_solution|>", "t", "s", True),
    ("no reasoning at all", None, "no reasoning at all", True),
    ("<think>first</think>middle</think>final", "first</think>middle", "final", True),
    ("before <think>x</think> after", "x", "before  after", True),
    ("<THINK>X</THINK>Y", "X", "Y", True),
    ("<think></think>ans", "", "ans", True),
    ("a\n</think>\n\nb\n", "a", "b", True),
    ("lead<think>cut off", "cut off", "lead", False),
    ("", None, "", True),
    (None, None, "", True),
]


@pytest.mark.parametrize(("response", "reasoning", "answer", "closed"), CASES)
def test_split_reasoning(response, reasoning, answer, closed):
    assert split_reasoning(response) == Parts(reasoning, answer, closed)


def test_polars_expressions_agree_with_python():
    frame = pl.DataFrame({"response": [c[0] for c in CASES]}, schema={"response": pl.String})
    out = frame.select(reasoning_expr().alias("r"), answer_expr().alias("a"), unclosed_expr().alias("u"))
    for (response, *_), (r, a, u) in zip(CASES, out.iter_rows(), strict=True):
        parts = split_reasoning(response)
        assert (r, a, u) == (parts.reasoning, parts.answer, not parts.closed), response


def test_polars_agrees_with_python_on_generated_responses():
    """Random mixes of markers (any case, several of each, in any order) and text, non-ASCII too."""
    rng = random.Random(7)
    pieces = ["<think>", "</think>", "<THINK>", "</Think>", "<|begin_of_thought|>", "<|end_of_thought|>"]
    pieces += ["<|begin_of_solution|>", "<answer>", "a b", "x\n", " ", "é∑", "\\boxed{4}", "<", ">"]
    responses = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 9))) for _ in range(3000)]
    frame = pl.DataFrame({"response": responses})
    out = frame.select(reasoning_expr().alias("r"), answer_expr().alias("a"), unclosed_expr().alias("u"))
    for response, (r, a, u) in zip(responses, out.iter_rows(), strict=True):
        parts = split_reasoning(response)
        assert (r, a, u) == (parts.reasoning, parts.answer, not parts.closed), response


def test_math_answer_comes_from_after_the_last_close():
    assert extract_answer("<think>maybe \\boxed{3}</think>no wait</think>so \\boxed{4}").text == "4"


def test_two_think_closes_keep_every_character_in_the_shards(tmp_path):
    """Ingest -> every default stage -> shards: the text between two `</think>` is not lost."""
    response = (
        "<think>\nFirst attempt: 2 + 2 is 5.\n</think>\n"
        "Wait, that is wrong; counting again gives four.\n</think>\n\n"
        "The answer is $\\boxed{4}$."
    )
    records = [{"problem": "What is 2 + 2?", "response": response, "answer": "4"}]
    ws_root = tmp_path / "ws"
    curate([str(write_jsonl(tmp_path / "two_closes.jsonl", records))], ws_root, progress=False)
    ws = Workspace.open(ws_root)
    shards = sorted((ws.root / "shards").glob("*/*.parquet"))
    assert shards, "the row reaches a shard"
    messages = [m for f in shards for row in pq.read_table(f).to_pylist() for m in row["messages"]]
    assistant = next(m["content"] for m in messages if m["role"] == "assistant")
    for piece in (
        "First attempt: 2 + 2 is 5.",
        "Wait, that is wrong; counting again gives four.",
        "$\\boxed{4}$",
    ):
        assert piece in assistant
    # every non-blank character of the response, in order, markers aside
    assert "".join(response.replace("<think>", "").replace("</think>", "").split()) == "".join(
        assistant.replace("<think>", "").replace("</think>", "").split()
    )
