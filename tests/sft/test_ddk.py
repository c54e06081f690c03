"""DDK domain reweighting (distill/sft/ddk.py): the weight formula, rows drawn by the weights, and a
tiny model trained with `mix` (weights logged, computed from the logged losses, resumed exactly)."""

from __future__ import annotations

import json
import math
import random
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from distill.sft.config import ConfigError, SFTConfig
from distill.sft.data import Example
from distill.sft.ddk import DomainData, ddk_weights, parse_mix
from distill.sft.packing import FitStats
from distill.sft.trainer import train

FAST = dict(
    lr=3e-3, seq_len=256, batch_tokens=256, grad_accum=2, gradient_checkpointing=False, warmup_ratio=0.2
)


def test_weights_follow_exp_of_the_loss_ratio_smoothed_toward_uniform():
    e = math.e
    # ratios 2 and 1 from uniform: softmax(2, 1) = (e, 1) / (e + 1), half of it mixed with uniform
    got = ddk_weights([2.0, 1.0], [1.0, 1.0], [0.5, 0.5], alpha=0.5)
    assert got == pytest.approx([0.5 * e / (e + 1) + 0.25, 0.5 / (e + 1) + 0.25])
    # the ratio is what counts, not the loss: a domain the reference also finds hard is not favoured
    assert ddk_weights([4.0, 1.0], [4.0, 1.0], [0.5, 0.5], 0.5) == pytest.approx([0.5, 0.5])
    # equal ratios keep the previous weights' shape (smoothed), alpha 0 is uniform whatever the losses
    assert ddk_weights([1.0] * 3, [1.0] * 3, [0.6, 0.3, 0.1], 1.0) == pytest.approx([0.6, 0.3, 0.1])
    assert ddk_weights([9.0, 1.0, 1.0], [1.0] * 3, [0.6, 0.3, 0.1], 0.0) == pytest.approx([1 / 3] * 3)
    # every domain keeps at least (1 - alpha) / N; a huge ratio does not overflow
    huge = ddk_weights([1e4, 1.0], [1.0, 1.0], [0.5, 0.5], 0.5)
    assert huge == pytest.approx([0.75, 0.25]) and huge.sum() == pytest.approx(1.0)


def fake_data(weights: list[float]) -> DomainData:
    examples = [Example([1, 2, 3], [-100, 2, 3]) for _ in range(30)]
    domain_bins = [[[i] for i in range(0, 10)], [[i] for i in range(10, 25)], [[i] for i in range(25, 30)]]
    return DomainData(
        train=examples,
        val=[],
        fit=FitStats(30, 0, 0),
        bins=[b for bins in domain_bins for b in bins],
        names=["code", "math", "science"],
        domain_bins=domain_bins,
        val_by_domain=[[], [], []],
        weights=np.asarray(weights),
        rows_per_epoch=30,
    )


def test_rows_are_drawn_by_the_weights_reproducibly():
    data = fake_data([0.6, 0.3, 0.1])
    draws = [d for step in range(3000) for d, _ in data.step_bins(step, 4, seed=7)]
    shares = np.bincount(draws, minlength=3) / len(draws)
    assert shares == pytest.approx([0.6, 0.3, 0.1], abs=0.015)
    rows = [b for step in range(3000) for d, b in data.step_bins(step, 4, seed=7) if d == 1]
    assert set(rows) == set(range(15))  # every row of a domain gets drawn
    assert data.step_bins(12, 4, seed=7) == data.step_bins(12, 4, seed=7)  # a resumed run draws the same
    assert data.steps_per_epoch(4) == 8  # the budget counts every domain's rows, as without reweighting
    data.weights = np.asarray([0.0, 0.0, 1.0])
    assert {d for step in range(50) for d, _ in data.step_bins(step, 4, seed=7)} == {2}


@pytest.mark.parametrize(
    "mix, message",
    [
        ({"reweight": "ddk"}, "mix.every"),
        ({"reweight": "doremi", "every": 5}, "mix.reweight"),
        ({"reweight": "ddk", "every": 5, "alpha": 2}, "mix.alpha"),
        ({"reweight": "ddk", "every": 5, "evry": 5}, "unknown mix key"),
        ("ddk", "mapping"),
    ],
)
def test_bad_mix_settings_are_config_errors(mix, message):
    with pytest.raises(ConfigError, match=message):
        SFTConfig(mix=mix)
    assert parse_mix({"reweight": "ddk", "every": 3}).alpha == 0.5


def products(n: int, seed: int) -> list[list[dict]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        a, b = rng.randint(2, 30), rng.randint(2, 30)
        answer = f"<think>\n{a} * {b} = {a * b}\n</think>\n\nThe product is $\\boxed{{{a * b}}}$."
        rows.append(
            [{"role": "user", "content": f"What is {a} times {b}?"}, {"role": "assistant", "content": answer}]
        )
    return rows


@pytest.fixture(scope="module")
def two_domains(tmp_path_factory, conversations, make_shard):
    out = tmp_path_factory.mktemp("two_domains")
    make_shard(out, conversations[:40], name="train-00000.parquet", domain="sums")
    make_shard(out, conversations[40:56], name="val-00000.parquet", domain="sums")
    make_shard(out, products(40, 1), name="train-00001.parquet", domain="products")
    make_shard(out, products(12, 2), name="val-00001.parquet", domain="products")
    return out


def ddk_records(out) -> list[dict]:
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if "ddk_weight/sums" in r]


def test_training_logs_weights_computed_from_the_measured_losses_and_resumes_exactly(
    tmp_path, tiny_base, two_domains
):
    config = SFTConfig(**FAST, max_steps=6, save_every=3, mix={"reweight": "ddk", "every": 2})
    full = train(config, two_domains, tiny_base, tmp_path / "full", progress=False)
    assert full.steps == 6
    # With epochs, as many steps as without reweighting (the domains packed together).
    from transformers import AutoTokenizer

    from distill.sft.ddk import load_domain_data
    from distill.sft.trainer import load_data

    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    stops = {tokenizer.eos_token_id}
    split = load_domain_data(config, two_domains, tokenizer, stops)
    together = load_data(config, two_domains, tokenizer, stops)
    assert split.steps_per_epoch(2) == together.steps_per_epoch(2) and len(split.bins) >= len(together.bins)
    records = ddk_records(tmp_path / "full")
    assert [r["step"] for r in records] == [1, 3, 5]
    names = ["products", "sums"]
    # No reference model: the reference is the base, measured before the first step (ratio 1: uniform).
    first = records[0]
    for name in names:
        assert first[f"ddk_reference_loss/{name}"] == first[f"ddk_loss/{name}"]
        assert first[f"ddk_weight/{name}"] == pytest.approx(0.5)
    previous = [0.5, 0.5]
    for record in records[1:]:
        losses = [record[f"ddk_loss/{n}"] for n in names]
        reference = [record[f"ddk_reference_loss/{n}"] for n in names]
        assert reference == [first[f"ddk_reference_loss/{n}"] for n in names]
        assert all(loss < ref for loss, ref in zip(losses, reference, strict=True))  # it learned
        weights = [record[f"ddk_weight/{n}"] for n in names]
        assert weights == pytest.approx(list(ddk_weights(losses, reference, previous, 0.5)))
        previous = weights
    assert records[-1]["ddk_weight/sums"] != pytest.approx(0.5)

    # Resumed from the step-3 checkpoint: the same weights from then on, and the same model.
    resumed_out = tmp_path / "resumed"
    shutil.copytree(
        tmp_path / "full" / "checkpoints" / "step-00000003", resumed_out / "checkpoints" / "step-00000003"
    )
    train(config, two_domains, tiny_base, resumed_out, progress=False)
    assert ddk_records(resumed_out) == records[2:]
    a, b = load_file(tmp_path / "full" / "model.safetensors"), load_file(resumed_out / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_reference_model_is_measured_once_and_must_share_the_tokenizer(tmp_path, tiny_base, two_domains):
    config = SFTConfig(**FAST, max_steps=3, mix={"reweight": "ddk", "every": 2, "reference": str(tiny_base)})
    train(config, two_domains, tiny_base, tmp_path / "out", progress=False)
    first, second = ddk_records(tmp_path / "out")
    # the reference is the base here: its loss is the student's before the first step
    assert first["ddk_reference_loss/sums"] == pytest.approx(first["ddk_loss/sums"], rel=1e-6)
    assert second["ddk_reference_loss/sums"] == first["ddk_reference_loss/sums"]

    from distill.sft.tiny import build_model, train_tokenizer

    other = tmp_path / "other"
    tokenizer = train_tokenizer(["a different corpus entirely"] * 8, vocab_size=300)
    build_model(tokenizer, hidden_size=32, intermediate_size=64).save_pretrained(other)
    tokenizer.save_pretrained(other)
    bad = SFTConfig(**FAST, max_steps=2, mix={"reweight": "ddk", "every": 2, "reference": str(other)})
    with pytest.raises(ConfigError, match="tokenizer differs"):
        train(bad, two_domains, tiny_base, tmp_path / "bad", progress=False)


def test_a_domain_without_validation_rows_is_refused(tmp_path, tiny_base, conversations, make_shard):
    from distill.sft.data import SFTDataError

    data = tmp_path / "data"
    make_shard(data, conversations[:20], name="train-00000.parquet", domain="sums")
    make_shard(data, conversations[20:30], name="val-00000.parquet", domain="sums")
    make_shard(data, products(20, 3), name="train-00001.parquet", domain="products")
    config = SFTConfig(**FAST, max_steps=2, mix={"reweight": "ddk", "every": 2})
    with pytest.raises(SFTDataError, match=r"\['products'\] have none"):
        train(config, data, tiny_base, tmp_path / "out", progress=False)
