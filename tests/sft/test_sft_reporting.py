"""An SFT run's logs and model card: TensorBoard event files beside metrics.jsonl, read back with
tensorboard's own reader, hold the same loss curve; README.md describes base, data and results."""

from __future__ import annotations

import json

import pytest
import yaml

from distill.cli import main

pytest.importorskip("tensorboard")


def scalars(folder, tag: str) -> dict[int, float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {event.step: event.value for event in events.Scalars(tag)}


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_base, shard_dir):
    out = tmp_path_factory.mktemp("logged") / "student"
    config = tmp_path_factory.mktemp("config") / "sft.yaml"
    settings = {
        "gradient_checkpointing": False,
        "grad_accum": 1,
        "seq_len": 256,
        "batch_tokens": 512,
        "lr": 1e-3,
        "max_steps": 6,
        "save_every": 3,
        "report_to": ["tensorboard"],
    }
    config.write_text(yaml.safe_dump(settings))
    argv = [
        "sft",
        "--data",
        str(shard_dir),
        "--base",
        str(tiny_base),
        "--out",
        str(out),
        "--config",
        str(config),
    ]
    assert main(argv) == 0
    return out, argv


def test_tensorboard_events_hold_the_loss_curve_of_metrics_jsonl(run):
    out, _ = run
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = {r["step"]: r["loss"] for r in records if "loss" in r}
    assert sorted(losses) == [1, 2, 3, 4, 5, 6]
    logged = scalars(out / "tensorboard", "train/loss")
    assert logged.keys() == losses.keys()
    assert all(logged[s] == pytest.approx(losses[s], rel=1e-6) for s in losses)
    assert logged[6] < logged[1]  # the curve, not a constant
    assert set(scalars(out / "tensorboard", "train/lr")) == set(losses)
    val = [r["val_loss"] for r in records if "val_loss" in r]
    assert list(scalars(out / "tensorboard", "val/loss").values()) == pytest.approx(val, rel=1e-6)


def test_a_resumed_run_keeps_one_loss_per_step(run, tiny_base, tmp_path):
    import shutil

    out, argv = run
    copy = tmp_path / "student"
    shutil.copytree(out, copy)
    # As if killed after logging step 6 but before saving: it resumes from the step-3 checkpoint.
    for name in ("model.safetensors", "summary.json"):
        (copy / name).unlink()
    assert main([*argv[:-3], str(copy), *argv[-2:]]) == 0
    logged = scalars(copy / "tensorboard", "train/loss")
    assert sorted(logged) == [1, 2, 3, 4, 5, 6]
    assert logged == pytest.approx(scalars(out / "tensorboard", "train/loss"), rel=1e-5)


def test_model_card_names_base_data_and_results(run, tiny_base, shard_dir):
    out, _ = run
    card = (out / "README.md").read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert f"`{tiny_base}`" in card and str(shard_dir) in card and "train-00000.parquet" in card
    assert f"| steps | {summary['steps']} |" in card
    assert f"{summary['first_loss']:.4f} -> {summary['last_loss']:.4f}" in card
    assert "| `lr` | `0.001` |" in card


def test_report_to_names_are_checked(tmp_path, tiny_base, shard_dir, capsys):
    from distill.sft.config import ConfigError, SFTConfig

    with pytest.raises(ConfigError, match="unknown logger"):
        SFTConfig(report_to=["tensorbord"])
    if not __import__("importlib").util.find_spec("wandb"):
        with pytest.raises(ConfigError, match="pip install wandb"):
            SFTConfig(report_to=["wandb"])
