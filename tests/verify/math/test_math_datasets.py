"""Accuracy on real data (../shared/data): MATH-500 own and mismatched pairs, Qwen2.5-Math samples, GSM8K."""

import json
from pathlib import Path

import pytest

from curate.verify.math import MathVerifier

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"


def load(relative: str) -> list[dict]:
    path = DATA / relative
    if not path.exists():
        pytest.skip(f"shared data absent: {path}")
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@pytest.fixture(scope="module")
def verifier():
    with MathVerifier(workers=2, timeout=10) as pool:
        yield pool


def test_math500_solutions_pass_against_their_own_answers(verifier):
    rows = load("math/math500.jsonl")
    verdicts = list(verifier.map((row["solution"], row["answer"]) for row in rows))
    misses = [
        (row["unique_id"], row["answer"], v.extracted, v.detail)
        for row, v in zip(rows, verdicts, strict=True)
        if v.status != "pass"
    ]
    assert len(rows) == 500
    assert len(misses) <= 1, misses  # >= 99.8%


def test_math500_solutions_fail_against_the_next_answer(verifier):
    rows = load("math/math500.jsonl")
    pairs = [
        (row["solution"], nxt["answer"])
        for row, nxt in zip(rows, rows[1:] + rows[:1], strict=True)
        if row["answer"].strip() != nxt["answer"].strip()
    ]
    passes = sum(v.status == "pass" for v in verifier.map(pairs))
    # <= 0.2% at the precision the target is stated; the one pass today is x=5 against 5, a true match
    assert passes <= round(0.002 * len(pairs))


def test_qwen_math_samples_agree_with_their_labels(verifier):
    rows = load("math/qwen_math_cot_100.jsonl")
    pairs = [(response, row["gt"]) for row in rows for response in row["code"]]
    labels = [label for row in rows for label in row["score"]]
    verdicts = list(verifier.map(pairs))
    agree = sum((v.status == "pass") == label for v, label in zip(verdicts, labels, strict=True))
    assert len(pairs) == 800
    # the labels come from another grader with errors of its own (see the README for the reviewed rows)
    assert agree >= 0.99 * len(pairs)
    assert not [v for v in verdicts if v.status in ("error", "timeout", "no_answer")]


def test_gsm8k_references_are_read_after_the_hashes(verifier):
    rows = load("bench/gsm8k_test.jsonl")[:300]
    final = [row["answer"].rsplit("####", 1)[1].strip() for row in rows]
    pairs = [
        (f"Adding it all up, the total is $\\boxed{{{n}}}$.", row["answer"])
        for n, row in zip(final, rows, strict=True)
    ]
    assert all(v.status == "pass" for v in verifier.map(pairs))
    wrong = [
        (f"\\boxed{{{int(n.replace(',', '')) + 1}}}", row["answer"])
        for n, row in zip(final, rows, strict=True)
    ]
    assert not any(v.status == "pass" for v in verifier.map(wrong))
