"""quality: every filter has rows that must pass and rows that must be rejected, with its own reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import sql
from curate.errors import CurateError
from curate.readers import resolve_inputs
from curate.rows import count_tokens, load_tokenizer
from curate.stage import run_stages
from curate.stages import Ingest
from curate.stages.normalize import Normalize
from curate.stages.quality import Quality
from curate.workspace import Workspace
from tests.conftest import shared_file, write_jsonl

REASONING = "Let me add the numbers. Two plus two makes four, which I can check by counting on my fingers."
GOOD = f"<think>\n{REASONING}\n</think>\n\nThe sum is $\\boxed{{4}}$."
LONG = f"<think>\n{' '.join([REASONING] * 4)}\n</think>\n\n$\\boxed{{4}}$"


def train_tokenizer(folder: Path) -> Path:
    """A tiny byte-level BPE tokenizer, trained here (nothing can be downloaded), saved as an HF folder."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<unk>", "<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator([REASONING, GOOD, "What is 2 + 2? The answer is four."] * 20, trainer)
    PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token="<|endoftext|>", unk_token="<unk>"
    ).save_pretrained(folder)
    return folder


def run_pipeline(tmp_path: Path, inputs: list[dict] | list[str], stages: list) -> Workspace:
    """Ingest `inputs` (records, or shared file paths) into tmp_path/ws and run `stages` after ingest."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    if inputs and isinstance(inputs[0], dict):
        inputs = [str(write_jsonl(tmp_path / "rows.jsonl", inputs))]
    ws = Workspace.open(tmp_path / "ws", create=True)
    run_stages(ws, [Ingest(resolve_inputs(inputs)), *stages], progress=False)
    return ws


def assert_ledger_balances(ws: Workspace) -> None:
    """Every ingested row is in the final kept set or rejected, exactly once."""
    con = sql.connect(ws.root)
    kept = [r for (r,) in con.execute("SELECT row_id FROM kept").fetchall()]
    rejected = [r for (r,) in con.execute("SELECT row_id FROM rejected").fetchall()]
    traces = {r for (r,) in con.execute("SELECT row_id FROM traces").fetchall()}
    assert sorted(kept + rejected) == sorted(traces)


def outcomes(ws: Workspace) -> dict[str, tuple[str | None, str | None]]:
    """problem -> (reason, detail) of its row, (None, None) when kept (one row per problem)."""
    assert_ledger_balances(ws)
    con = sql.connect(ws.root)
    kept = {p: (None, None) for (p,) in con.execute("SELECT problem FROM kept").fetchall()}
    rejected = {
        p: (r, d) for p, r, d in con.execute("SELECT problem, reason, detail FROM rejected").fetchall()
    }
    return {**kept, **rejected}


def run_quality(tmp_path: Path, records: list[dict], **options) -> dict[str, tuple[str | None, str | None]]:
    """Ingest `records` and run normalize + quality; returns problem -> (reason, detail), None when kept."""
    result = outcomes(run_pipeline(tmp_path, records, [Normalize(), Quality(**options)]))
    assert len(result) == len(records), "every row is kept or rejected once"
    return result


def row(name: str, response: str | None, **extra) -> dict:
    return {"problem": f"{name}: what is 2 + 2?", "response": response, "source": "teacher", **extra}


def reason_of(result: dict, name: str) -> str | None:
    return result[f"{name}: what is 2 + 2?"][0]


def test_think_tags_and_empty_rows(tmp_path):
    records = [
        row("good", GOOD),
        row("r1 template without opening tag", f"{REASONING}\n</think>\n\n$\\boxed{{4}}$"),
        row("prompt only", None),
        row("unclosed", f"<think>\n{REASONING} and then I keep going"),
        row("empty think", "<think>\n\n</think>\n\nThe answer is $\\boxed{4}$."),
        row("no think", "The answer is $\\boxed{4}$."),
    ]
    result = run_quality(tmp_path, records, think="require")
    assert reason_of(result, "good") is None
    assert reason_of(result, "r1 template without opening tag") is None
    assert reason_of(result, "prompt only") == "empty_response"
    assert reason_of(result, "unclosed") == "think_unclosed"
    assert reason_of(result, "empty think") == "empty_reasoning"
    assert reason_of(result, "no think") == "think_missing"


def test_think_auto_requires_reasoning_only_for_inputs_that_have_it(tmp_path):
    traces = [row(f"trace {i}", GOOD, source="r1") for i in range(3)] + [
        row("lost its think", "$\\boxed{4}$", source="r1")
    ]
    human = [row(f"human {i}", "Add them: $\\boxed{4}$.", source="textbook") for i in range(3)]
    # "reasoning required" is decided per input file, even when both inputs share one source name
    tmp_path.mkdir(parents=True, exist_ok=True)
    r1, textbook = (write_jsonl(tmp_path / f"{n}.jsonl", r) for n, r in (("r1", traces), ("textbook", human)))
    ws = Workspace.open(tmp_path / "ws", create=True)
    ingest = Ingest(resolve_inputs([str(r1), str(textbook)]), source="same")
    run_stages(ws, [ingest, Normalize(), Quality()], progress=False)
    result = outcomes(ws)
    assert reason_of(result, "lost its think") == "think_missing"
    assert "required for input" in result["lost its think: what is 2 + 2?"][1]
    assert all(reason_of(result, f"trace {i}") is None for i in range(3))
    assert all(reason_of(result, f"human {i}") is None for i in range(3))
    required = Workspace.open(tmp_path / "ws").manifest()["stages"][-1]["think_required_for"]
    assert [Path(p).name for p in required] == ["r1.jsonl"]


def test_truncated_generations(tmp_path):
    records = [
        row("good", GOOD, finish_reason="stop"),
        row("hit the limit", GOOD, finish_reason="length"),
        row("openr1 incomplete", GOOD, is_reasoning_complete=False),
        row("nothing after think", f"<think>\n{REASONING}\n</think>\n"),
        row("long", LONG),
    ]
    result = run_quality(tmp_path, records, max_new_tokens=60)
    assert reason_of(result, "good") is None
    assert reason_of(result, "hit the limit") == "truncated"
    assert reason_of(result, "openr1 incomplete") == "truncated"
    # no answer after the reasoning is its own reason: the teacher did stop, it said nothing more
    assert reason_of(result, "nothing after think") == "no_final_answer"
    words = len(LONG.split())
    assert words >= 60 > len(GOOD.split())
    assert result["long: what is 2 + 2?"] == (
        "truncated",
        f"{words} completion tokens reach max_new_tokens 60",
    )


def test_require_final_answer(tmp_path):
    records = [row("marker", GOOD), row("no marker", f"<think>\n{REASONING}\n</think>\n\nIt is four.")]
    assert reason_of(run_quality(tmp_path / "a", records), "no marker") is None
    strict = run_quality(tmp_path / "b", records, require_final_answer=True)
    assert reason_of(strict, "no marker") == "no_final_answer"
    assert reason_of(strict, "marker") is None


def test_answer_only_in_reasoning(tmp_path):
    records = [
        row("boxed in both", "<think>\nSo it is \\boxed{4}.\n</think>\n\nThe answer is $\\boxed{4}$."),
        row("boxed only inside", "<think>\nSo it is \\boxed{4}.\n</think>\n\nThat is all."),
        row("nothing after a boxed think", "<think>\nSo it is \\boxed{4}.\n</think>"),
        row("code only inside", "<think>\n```python\nprint(4)\n```\n</think>\n\nRun the program above."),
        row("code in the answer", "<think>\n```python\nprint(4)\n```\n</think>\n\n```python\nprint(4)\n```"),
    ]
    result = run_quality(tmp_path, records)
    assert reason_of(result, "boxed in both") is None
    assert reason_of(result, "code in the answer") is None
    assert reason_of(result, "boxed only inside") == "answer_only_in_reasoning"
    assert reason_of(result, "nothing after a boxed think") == "answer_only_in_reasoning"
    assert reason_of(result, "code only inside") == "answer_only_in_reasoning"


def test_degenerate_repetition(tmp_path):
    loop = "Wait, let me recompute the sum of two and two once more to be completely sure of it. "
    paragraph = "Let me double check this step by recomputing the value of the expression carefully."
    records = [
        row("good", GOOD),
        row(
            "varied long",
            f"<think>\n{' '.join(f'Step {i}: {i} + {i} = {2 * i}.' for i in range(300))}\n</think>\n\n$\\boxed{{4}}$",
        ),
        row("loop", f"<think>\n{REASONING} {loop * 40}\n</think>\n\n$\\boxed{{4}}$"),
        row(
            "paragraphs",
            "<think>\n" + "\n\n".join([REASONING] + [paragraph] * 4) + "\n</think>\n\n$\\boxed{4}$",
        ),
        row(
            "three paragraphs",
            "<think>\n" + "\n\n".join([REASONING] + [paragraph] * 3) + "\n</think>\n\n$\\boxed{4}$",
        ),
    ]
    result = run_quality(tmp_path, records)
    assert reason_of(result, "good") is None
    assert reason_of(result, "varied long") is None
    assert reason_of(result, "three paragraphs") is None  # max_paragraph_repeats is 3
    assert result["loop: what is 2 + 2?"][0] == "repetition"
    assert "10-gram repeat ratio" in result["loop: what is 2 + 2?"][1]
    assert result["paragraphs: what is 2 + 2?"] == ("repetition", "a paragraph is repeated 4 times")


def test_language_mixing(tmp_path):
    chinese = "我们需要计算二加二的结果然后检查答案是否正确"
    records = [
        row("english", GOOD),
        row(
            "greek letters",
            f"<think>\nLet θ = 2 and φ = 2, so θ + φ = 4. {REASONING}\n</think>\n\n$\\boxed{{4}}$",
        ),
        row("mixed", f"<think>\n{REASONING} {chinese} {chinese}\n</think>\n\n$\\boxed{{4}}$"),
        {
            "problem": "计算二加二等于多少？",
            "response": f"<think>\n{chinese}\n</think>\n\n答案是 $\\boxed{{4}}$",
            "source": "teacher",
        },
        {
            "problem": "$2+2=?$",
            "response": f"<think>\n{chinese}\n</think>\n\n$\\boxed{{4}}$",
            "source": "teacher",
        },
        {
            "problem": "写一个函数返回二加二",
            "response": f"<think>\n{chinese}\n</think>\n\n```python\ndef add():\n    return 2 + 2\n```",
            "source": "teacher",
        },
    ]
    result = run_quality(tmp_path, records)
    assert reason_of(result, "english") is None
    assert reason_of(result, "greek letters") is None
    assert reason_of(result, "mixed") == "language_mix"
    assert result["计算二加二等于多少？"][0] is None, "a Chinese problem answered in Chinese is not mixing"
    assert result["$2+2=?$"][0] is None, "a problem without letters gives no language to compare with"
    assert result["写一个函数返回二加二"][0] is None, "code in a Chinese answer is not English prose"


def test_token_bounds_use_the_target_tokenizer(tmp_path):
    folder = train_tokenizer(tmp_path / "tokenizer")
    tokenizer = load_tokenizer(str(folder))
    checks = " ".join(f"Check {i}: {i} + {i} = {2 * i}." for i in range(12))
    responses = {
        "short": "$\\boxed{4}$",
        "medium": GOOD,
        "long": f"<think>\n{REASONING} {checks}\n</think>\n\n$\\boxed{{4}}$",
    }
    sizes = {
        name: sum(count_tokens([f"{name}: what is 2 + 2?", text], tokenizer))
        for name, text in responses.items()
    }
    assert sizes["short"] < sizes["medium"] < sizes["long"]
    bounds = {"min_tokens": sizes["short"] + 1, "max_tokens": sizes["long"] - 1}
    records = [row(name, text) for name, text in responses.items()]
    result = run_quality(tmp_path, records, think="optional", tokenizer=str(folder), **bounds)
    assert reason_of(result, "medium") is None
    assert reason_of(result, "short") == "too_short"
    assert reason_of(result, "long") == "too_long"
    con = sql.connect(tmp_path / "ws")
    problem, n_tokens = con.execute("SELECT problem, n_tokens FROM kept").fetchone()
    assert n_tokens == sizes["medium"], "prompt + assistant turn, counted by the tokenizer"
    assert n_tokens != len(problem.split()) + len(GOOD.split()), "counted with the tokenizer, not by words"


def test_whitespace_fallback_without_tokenizer(tmp_path):
    result = run_quality(tmp_path, [row("medium", GOOD)], max_tokens=10)
    words = len("medium: what is 2 + 2?".split()) + len(GOOD.split())
    assert result["medium: what is 2 + 2?"] == ("too_long", f"{words} tokens > max_tokens 10")


def test_a_tokenizer_that_cannot_be_loaded_is_a_clear_error(tmp_path):
    with pytest.raises(CurateError, match="cannot load tokenizer .*no such folder"):
        Quality(tokenizer=str(tmp_path / "missing"))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "tokenizer.json").write_text("not json")
    with pytest.raises(CurateError, match="cannot load tokenizer"):
        Quality(tokenizer=str(tmp_path / "broken"))


def test_real_math_traces_pass_except_garbled_ones(tmp_path):
    """MATH-500 solutions and Qwen2.5-Math samples: only the three garbled multilingual samples go."""
    files = [str(shared_file("math/math500.jsonl")), str(shared_file("math/qwen_math_cot_100.jsonl"))]
    ws = run_pipeline(tmp_path, files, [Normalize(), Quality()])
    con = sql.connect(ws.root)
    reasons = con.execute("SELECT source, reason, count(*) FROM rejected GROUP BY ALL").fetchall()
    assert reasons == [("qwen_math_cot_100", "language_mix", 3)]
    garbled = con.execute("SELECT response FROM rejected").fetchall()
    assert all(sum(ord(c) > 0x2E80 for c in r) > 50 for (r,) in garbled), "each has many CJK characters"
    info = json.loads((ws.stage("quality").path / "_stage.json").read_text())
    assert info["token_counter"] == "whitespace" and info["think_required_for"] == []
