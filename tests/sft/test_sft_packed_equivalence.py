"""A packed row trains exactly like its samples run one by one through the stock model."""

from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM

from distill.sft import attention
from distill.sft.data import IGNORE_INDEX, encode_conversations
from distill.sft.packing import pack, pack_row
from distill.sft.tiny import build_model
from distill.sft.trainer import Dist, TokenLoss, accumulate_gradients

TOL = 1e-5


@pytest.fixture(scope="module", params=["qwen2", "llama"])
def base(request, tmp_path_factory, tokenizer):
    out = tmp_path_factory.mktemp(request.param)
    # A wide initialisation gives peaked attention and logits, so that mixing samples would show.
    model = build_model(
        tokenizer, family=request.param, hidden_size=32, intermediate_size=64, seed=3, initializer_range=0.2
    )
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def examples(tokenizer, conversations):
    return encode_conversations(tokenizer, conversations[:10])


def load(base, attn: str):
    return AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, attn_implementation=attn)


def reference(base, examples):
    """Mean token loss and its gradients, each sample alone through the stock SDPA model."""
    model = load(base, "sdpa")
    total, count = 0.0, 0
    for example in examples:
        ids = torch.tensor(example.input_ids, dtype=torch.long)[None]
        labels = torch.tensor(example.labels, dtype=torch.long)
        logits = model(input_ids=ids).logits[0]
        total = total + F.cross_entropy(logits[:-1], labels[1:], ignore_index=IGNORE_INDEX, reduction="sum")
        count += int((labels[1:] != IGNORE_INDEX).sum())
    loss = total / count
    loss.backward()
    return loss.item(), {name: p.grad.clone() for name, p in model.named_parameters()}


def grads_of(model: TokenLoss) -> dict:
    return {name.removeprefix("lm."): p.grad for name, p in model.named_parameters()}


def assert_grads_close(got: dict, want: dict):
    assert got.keys() == want.keys()
    worst = max((got[k] - want[k]).abs().max().item() for k in want)
    assert worst <= TOL, f"max gradient difference {worst:.2e}"


def test_packed_row_matches_one_by_one(base, examples):
    want_loss, want_grads = reference(base, examples)
    model = TokenLoss(load(base, attention.register()))
    row = pack_row(examples)
    assert len(row.lengths) == len(examples) > 1
    loss = model.row_loss(row) / row.n_supervised
    loss.backward()
    assert abs(loss.item() - want_loss) <= TOL
    assert_grads_close(grads_of(model), want_grads)


def test_gradient_checkpointing_changes_nothing(base, examples):
    from distill.sft.config import SFTConfig
    from distill.sft.trainer import load_model

    _, want_grads = reference(base, examples)
    model = TokenLoss(load_model(base, SFTConfig(gradient_checkpointing=True))).train()
    assert model.lm.is_gradient_checkpointing
    row = pack_row(examples)
    (model.row_loss(row) / row.n_supervised).backward()
    assert_grads_close(grads_of(model), want_grads)


def test_accumulation_normalises_by_the_step_token_count(base, examples):
    want_loss, want_grads = reference(base, examples)
    model = TokenLoss(load(base, attention.register()))
    rows = [pack_row([examples[i] for i in b]) for b in pack(examples, batch_tokens=160)]
    counts = [r.n_supervised for r in rows]
    assert len(rows) >= 3 and len(set(counts)) > 1  # uneven micro-batches: where naive averaging goes wrong
    loss_sum, n = accumulate_gradients(model, rows, Dist(), contextlib.nullcontext())
    assert n == sum(counts)
    assert abs(loss_sum / n - want_loss) <= TOL
    assert_grads_close(grads_of(model), want_grads)
    # Control: the mean of per-micro-batch means is a different objective on this data.
    model.zero_grad()
    (sum(model.row_loss(r) / r.n_supervised for r in rows) / len(rows)).backward()
    naive = grads_of(model)
    assert max((naive[k] - want_grads[k]).abs().max().item() for k in want_grads) > 100 * TOL


def test_chunked_lm_head_matches_single_pass(base, examples):
    row = pack_row(examples)
    whole, chunked = (
        TokenLoss(load(base, attention.register())),
        TokenLoss(load(base, attention.register()), 16),
    )
    a, b = whole.row_loss(row) / row.n_supervised, chunked.row_loss(row) / row.n_supervised
    a.backward()
    b.backward()
    assert abs(a.item() - b.item()) <= TOL
    assert_grads_close(grads_of(chunked), grads_of(whole))


def test_naive_concatenation_would_be_caught(base, examples):
    """Control: without restarting positions and isolating samples, the loss differs clearly."""
    want_loss, _ = reference(base, examples)
    model = load(base, "sdpa")
    row = pack_row(examples)
    with torch.no_grad():
        logits = model(input_ids=row.input_ids).logits[0]
    naive = F.cross_entropy(logits, row.targets[0], ignore_index=IGNORE_INDEX).item()
    assert abs(naive - want_loss) > 1e-3
