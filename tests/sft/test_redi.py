"""REDI (`objective: redi`): packed pairs give the per-pair loss and gradients, the two sides of a
pair never attend to each other, and a short run widens the chosen-rejected margin."""

from __future__ import annotations

import contextlib
import json
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, AutoTokenizer

from distill.sft import attention
from distill.sft.config import ConfigError, SFTConfig
from distill.sft.data import IGNORE_INDEX, SFTDataError, encode_conversations
from distill.sft.packing import best_fit_decreasing
from distill.sft.redi import PairLoss, load_pair_data, pack_pairs, pair_logps, read_pairs
from distill.sft.tiny import build_model
from distill.sft.trainer import Dist, accumulate_gradients, train

TOL = 1e-5
ALPHA = 0.8


def wrong(conversation: list[dict]) -> list[dict]:
    """The same problem with a wrong final sum (in the last step and the box): a failed trace."""
    answer = conversation[-1]["content"]
    total = int(re.search(r"\\boxed\{(\d+)\}", answer).group(1))
    bad = answer.replace(f"= {total}\n</think>", f"= {total + 1}\n</think>").replace(
        f"\\boxed{{{total}}}", f"\\boxed{{{total + 1}}}"
    )
    return [*conversation[:-1], {"role": "assistant", "content": bad}]


def pair_conversations(conversations):
    return [(c, wrong(c)) for c in conversations]


@pytest.fixture(scope="module", params=["qwen2", "llama"])
def base(request, tmp_path_factory, tokenizer):
    out = tmp_path_factory.mktemp(f"redi_{request.param}")
    # A wide initialisation: peaked attention, so that a pair's sides attending to each other would show.
    build_model(
        tokenizer, family=request.param, hidden_size=32, intermediate_size=64, seed=3, initializer_range=0.2
    ).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def pairs(tokenizer, conversations):
    chosen, rejected = zip(*pair_conversations(conversations[:8]), strict=True)
    return list(
        zip(encode_conversations(tokenizer, chosen), encode_conversations(tokenizer, rejected), strict=True)
    )


def load(base, attn: str):
    return AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, attn_implementation=attn)


def mean_nll(model, example) -> torch.Tensor:
    ids = torch.tensor(example.input_ids, dtype=torch.long)[None]
    labels = torch.tensor(example.labels[1:], dtype=torch.long)
    logits = model(input_ids=ids).logits[0, :-1]
    return F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX, reduction="mean")


def reference(base, pairs):
    """The REDI loss pair by pair, each sequence alone through the stock SDPA model, and its gradients."""
    model = load(base, "sdpa")
    loss = sum(mean_nll(model, c) - ALPHA * mean_nll(model, r) for c, r in pairs) / len(pairs)
    loss.backward()
    return loss.item(), {name: p.grad.clone() for name, p in model.named_parameters()}


def grads_of(model) -> dict:
    return {name.removeprefix("lm."): p.grad for name, p in model.named_parameters()}


def test_packed_pairs_match_per_pair(base, pairs):
    want_loss, want_grads = reference(base, pairs)
    model = PairLoss(load(base, attention.register()), alpha=ALPHA)
    bins = best_fit_decreasing([len(c) + len(r) for c, r in pairs], 400)
    rows = [pack_pairs([pairs[i] for i in b]) for b in bins]
    assert len(rows) >= 2 and len({r.n_pairs for r in rows}) > 1  # uneven rows: pairs, not rows, are averaged
    loss_sum, n = accumulate_gradients(model, rows, Dist(), contextlib.nullcontext())
    assert n == len(pairs)
    assert abs(loss_sum / n - want_loss) <= TOL
    got = grads_of(model)
    assert got.keys() == want_grads.keys()
    worst = max((got[k] - want_grads[k]).abs().max().item() for k in want_grads)
    assert worst <= TOL, f"max gradient difference {worst:.2e}"
    metrics = model.pop_metrics(Dist())
    assert metrics["margin"] == pytest.approx(metrics["chosen_logp"] - metrics["rejected_logp"])
    assert model.pop_metrics(Dist()) == {}  # popped


def test_chunked_head_matches(base, pairs):
    row = pack_pairs(pairs)
    whole, chunked = PairLoss(load(base, attention.register())), PairLoss(load(base, attention.register()), 7)
    a, b = whole.row_loss(row), chunked.row_loss(row)
    assert abs(a.item() - b.item()) <= TOL


def test_sides_attending_to_each_other_would_be_caught(base, pairs):
    """Control: one document per pair (the rejected side sees the chosen one) changes the loss."""
    model = PairLoss(load(base, attention.register()), alpha=ALPHA)
    row = pack_pairs(pairs)
    merged = pack_pairs(pairs)
    merged.cu_seqlens = merged.cu_seqlens[::2].contiguous()
    merged.lengths = [a + b for a, b in zip(row.lengths[::2], row.lengths[1::2], strict=True)]
    with torch.no_grad():
        apart, together = model.row_loss(row).item(), model.row_loss(merged).item()
    assert abs(apart - together) > 1e-3


def write_pairs(path, pairs):
    path.parent.mkdir(parents=True, exist_ok=True)
    chosen, rejected = zip(*pairs, strict=True)
    pq.write_table(pa.table({"chosen": list(chosen), "rejected": list(rejected)}), path)


def test_short_run_widens_the_margin(tmp_path, tiny_base, conversations):
    data = tmp_path / "pairs"
    write_pairs(data / "train-00000.parquet", pair_conversations(conversations[:48]))
    write_pairs(data / "val-00000.parquet", pair_conversations(conversations[48:56]))
    cfg = SFTConfig(
        objective="redi",
        lr=3e-3,
        warmup_ratio=0.0,
        schedule="constant",
        max_steps=12,
        seq_len=256,
        batch_tokens=1024,
        grad_accum=1,
        bf16=False,
        gradient_checkpointing=False,
        save_every=0,
        report_to=[],
    )
    result = train(cfg, data, tiny_base, tmp_path / "out", progress=False)
    lines = [json.loads(line) for line in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in lines if "margin" in r]
    assert len(steps) == 12 and result.fit.kept == 48
    assert steps[-1]["margin"] > steps[0]["margin"]
    assert "val_margin" in lines[-1]
    # scored again pair by pair, each sequence alone, by the base and by the saved model
    saved = AutoTokenizer.from_pretrained(tmp_path / "out")  # the trainer's (reloaded) tokenizer
    data_sets = load_pair_data(cfg, data, saved, {saved.eos_token_id})
    base_lm, trained = load(tiny_base, "sdpa"), load(tmp_path / "out", "sdpa")

    def mean_margin(lm, pairs) -> float:
        return sum(w - lose for w, lose in pair_logps(lm, pairs)) / len(pairs)

    # the sides differ in a few answer tokens of ~100, so length-normalised margins are small
    assert mean_margin(trained, data_sets.train) > mean_margin(base_lm, data_sets.train) + 0.001
    assert lines[-1]["val_margin"] == pytest.approx(mean_margin(trained, data_sets.val), abs=1e-4)


def test_config_and_data_errors(tmp_path, shard_dir):
    assert SFTConfig().objective == "sft" and SFTConfig(objective="redi").alpha == 0.8
    with pytest.raises(ConfigError, match="objective"):
        SFTConfig(objective="dpo")
    with pytest.raises(SFTDataError, match="export WS --to redi"):
        read_pairs(sorted(shard_dir.glob("train-*.parquet")))
