"""Fixtures for the SFT tests: a tokenizer trained here, tiny models from configs, parquet shards.

Helpers are handed to tests as fixtures (`make_shard`, `math500`), so no test imports this file.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distill.sft.tiny import build_model, train_tokenizer

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def arithmetic_conversations(n: int, seed: int = 0) -> list[list[dict]]:
    """Small reasoning conversations of varied length (a few to ~150 tokens)."""
    rng = random.Random(seed)
    conversations = []
    for _ in range(n):
        terms = [rng.randint(1, 99) for _ in range(rng.randint(2, 12))]
        steps, total = [], 0
        for term in terms:
            steps.append(f"{total} + {term} = {total + term}")
            total += term
        question = f"What is {' + '.join(map(str, terms))}?"
        answer = "<think>\n" + "\n".join(steps) + f"\n</think>\n\nThe sum is $\\boxed{{{total}}}$."
        conversations.append(
            [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        )
    return conversations


def corpus(conversations) -> list[str]:
    return [m["content"] for c in conversations for m in c]


def write_shard(
    directory: Path, conversations, name: str = "train-00000.parquet", domain: str = "math"
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "id": [f"{domain}-{name}-{i}" for i in range(len(conversations))],
            "problem_id": [f"p{i}" for i in range(len(conversations))],
            "domain": [domain] * len(conversations),
            "messages": conversations,
        }
    )
    path = directory / name
    pq.write_table(table, path)
    return path


def math500_conversations(limit: int | None = None) -> list[list[dict]]:
    """MATH-500 problems with their reference solutions as the reasoning, in the shard's message format."""
    path = SHARED_DATA / "math" / "math500.jsonl"
    if not path.exists():
        pytest.skip("shared data absent (../shared/data/math/math500.jsonl)")
    rows = [json.loads(line) for line in path.read_text().splitlines()][:limit]
    return [
        [
            {"role": "user", "content": r["problem"]},
            {
                "role": "assistant",
                "content": f"<think>\n{r['solution']}\n</think>\n\nThe answer is $\\boxed{{{r['answer']}}}$.",
            },
        ]
        for r in rows
    ]


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models train as fast on one thread; a second one only spin-waits when other jobs share the cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def conversations():
    return arithmetic_conversations(64)


@pytest.fixture(scope="session")
def tokenizer(conversations):
    return train_tokenizer(
        corpus(conversations) + corpus(arithmetic_conversations(200, seed=1)), vocab_size=400
    )


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory, tokenizer) -> Path:
    """A tiny Qwen2 saved in HF format, as `--base` expects."""
    out = tmp_path_factory.mktemp("tiny_base")
    build_model(tokenizer, hidden_size=32, intermediate_size=64, num_heads=4, num_kv_heads=2).save_pretrained(
        out
    )
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def shard_dir(tmp_path_factory, conversations) -> Path:
    out = tmp_path_factory.mktemp("shard")
    write_shard(out, conversations[:56])
    write_shard(out, conversations[56:], name="val-00000.parquet")
    return out


@pytest.fixture(scope="session")
def make_shard():
    return write_shard


@pytest.fixture(scope="session")
def math500():
    return math500_conversations
