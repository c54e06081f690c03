"""Learning-rate schedules (the LR at given steps, and in a real run's metrics) and the global batch:
gradient accumulation derived from global_batch and the world size, and refused when it does not divide."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from distill.sft.config import ConfigError, SFTConfig
from distill.sft.schedule import lr_factor
from distill.sft.trainer import train

FAST = dict(lr=1e-3, seq_len=256, batch_tokens=256, gradient_checkpointing=False, save_every=0, report_to=[])


def test_constant_with_warmup_ramps_then_holds():
    factors = [lr_factor(s, 50, "constant_with_warmup", 0.1) for s in range(50)]
    assert factors[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])  # ceil(0.1 x 50) = 5 warmup steps
    assert factors[5:] == [1.0] * 45
    assert [lr_factor(s, 50, "constant", 0.1) for s in range(50)] == factors  # the older name, same shape


def test_cosine_ramps_then_decays_to_the_floor():
    factors = [lr_factor(s, 50, "cosine", 0.1, min_lr_ratio=0.1) for s in range(50)]
    assert factors[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert factors[5] == pytest.approx(1.0)
    assert factors[5 + 45 // 2] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 22 / 45)))
    assert factors[-1] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 44 / 45)))
    assert all(a > b for a, b in zip(factors[5:], factors[6:], strict=False))


def test_no_warmup_starts_at_the_peak():
    assert lr_factor(0, 10, "constant_with_warmup", 0.0) == 1.0
    assert lr_factor(0, 10, "cosine", 0.0) == 1.0


def test_an_unknown_schedule_is_a_config_error():
    with pytest.raises(ConfigError, match="schedule must be one of cosine, constant_with_warmup, constant"):
        SFTConfig(schedule="linear")


@pytest.mark.parametrize(
    ("global_batch", "world", "accum"),
    [(96, 8, 12), (96, 1, 96), (32, 8, 4), (96, 32, 3), (32, 32, 1)],
)
def test_accumulation_is_global_batch_over_devices(global_batch, world, accum):
    # TinyR1: 96 sequences per step for math and code, 32 for science, one sequence per device.
    assert SFTConfig(global_batch=global_batch).accumulation(world) == accum


def test_without_global_batch_accumulation_is_per_rank():
    assert SFTConfig(grad_accum=3).accumulation(1) == 3 and SFTConfig(grad_accum=3).accumulation(4) == 3


@pytest.mark.parametrize(("global_batch", "world"), [(96, 5), (32, 64), (3, 2)])
def test_a_global_batch_that_does_not_divide_is_refused(global_batch, world):
    with pytest.raises(ConfigError, match=f"global_batch {global_batch} is not a multiple of {world} rank"):
        SFTConfig(global_batch=global_batch).accumulation(world)
    with pytest.raises(ConfigError, match="global_batch must be > 0"):
        SFTConfig(global_batch=0)


def test_a_run_follows_its_schedule_and_global_batch(tmp_path, tiny_base, shard_dir):
    """global_batch 4 in one process: 4 rows a step (grad_accum says 1 and is overridden), the same
    weights as grad_accum 4, and the logged LR is constant_with_warmup's."""
    settings = {**FAST, "max_steps": 4, "warmup_ratio": 0.5, "schedule": "constant_with_warmup"}
    by_batch = train(
        SFTConfig(**settings, grad_accum=1, global_batch=4),
        shard_dir,
        tiny_base,
        tmp_path / "a",
        progress=False,
    )
    train(SFTConfig(**settings, grad_accum=4), shard_dir, tiny_base, tmp_path / "b", progress=False)
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["rows_per_step"] == 4 and summary["world"] == 1 and by_batch.steps == 4
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    records = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    lrs = [r["lr"] for r in records if "lr" in r]
    assert lrs == pytest.approx([5e-4, 1e-3, 1e-3, 1e-3])
