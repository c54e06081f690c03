"""`distillery sft` and `distillery branch`, and the same run sharded over 2 processes (torchrun, FSDP, gloo)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from distill.cli import main

SMALL = {
    "gradient_checkpointing": False,
    "grad_accum": 1,
    "warmup_ratio": 0.0,
    "seq_len": 256,
    "batch_tokens": 256,
}


def write_config(path: Path, **values) -> Path:
    path.write_text(yaml.safe_dump(values))
    return path


def test_sft_command_trains_and_reports(tmp_path, tiny_base, shard_dir, capsys):
    # The default recipe (with gradient checkpointing) plus flags for a short run.
    out = tmp_path / "student"
    argv = ["sft", "--data", str(shard_dir), "--base", str(tiny_base), "--out", str(out)]
    code = main(argv + ["--max-steps", "3", "--lr", "1e-3", "--seq-len", "256", "--batch-tokens", "512"])
    assert code == 0
    table = capsys.readouterr().out
    assert "train loss" in table and "56 kept, 0 dropped" in table
    summary = json.loads((out / "summary.json").read_text())
    assert (
        summary["steps"] == 3
        and summary["config"]["lr"] == 1e-3
        and summary["config"]["gradient_checkpointing"]
    )
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()


def test_bad_input_is_reported_without_traceback(tmp_path, tiny_base, capsys):
    argv = [
        "sft",
        "--data",
        str(tmp_path / "nowhere"),
        "--base",
        str(tiny_base),
        "--out",
        str(tmp_path / "o"),
    ]
    assert main(argv) == 2
    assert "nowhere: not a directory of parquet shards" in capsys.readouterr().err
    bad = write_config(tmp_path / "bad.yaml", lr=-1)
    assert main(argv + ["--config", str(bad)]) == 2
    assert "lr must be > 0" in capsys.readouterr().err


def test_branch_trains_every_domain_with_its_epochs(tmp_path, tiny_base, conversations, make_shard, capsys):
    from curate.workspace import Workspace

    ws = Workspace.open(tmp_path / "ws", create=True).root
    make_shard(ws / "shards" / "math", conversations[:24], domain="math")
    make_shard(ws / "shards" / "code", conversations[24:40], domain="code")
    config = write_config(tmp_path / "sft.yaml", **SMALL, lr=1e-3, epochs=1, domain_epochs={"code": 2})
    argv = [
        "branch",
        str(ws),
        "--base",
        str(tiny_base),
        "--out",
        str(tmp_path / "students"),
        "--config",
        str(config),
    ]
    assert main(argv) == 0
    for domain, epochs in [("math", 1), ("code", 2)]:
        summary = json.loads((tmp_path / "students" / domain / "summary.json").read_text())
        assert summary["config"]["epochs"] == epochs
        assert (tmp_path / "students" / domain / "model.safetensors").is_file()
    assert main(argv) == 0  # a rerun keeps finished students
    assert capsys.readouterr().out.count("done earlier") == 2


def torchrun(args: list[str]) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    done = subprocess.run(
        command + ["-m", "distill.cli"] + args, env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-3000:]


def metric_losses(out: Path) -> list[float]:
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if "loss" in r]


def test_fsdp_two_processes_match_one_and_resume(tmp_path, tiny_base, shard_dir):
    """torchrun with 2 CPU processes (gloo, FSDP2) trains the same weights as 1 process with 2x accumulation,
    and resumes from its sharded checkpoint to identical weights."""
    settings = {**SMALL, "lr": 1e-3, "max_steps": 3, "save_every": 2}
    one = write_config(tmp_path / "one.yaml", **{**settings, "grad_accum": 2})
    two = write_config(tmp_path / "two.yaml", **settings)
    common = ["sft", "--data", str(shard_dir), "--base", str(tiny_base)]
    assert main(common + ["--out", str(tmp_path / "one"), "--config", str(one)]) == 0
    torchrun(common + ["--out", str(tmp_path / "two"), "--config", str(two)])

    a, b = (
        load_file(tmp_path / "one" / "model.safetensors"),
        load_file(tmp_path / "two" / "model.safetensors"),
    )
    assert a.keys() == b.keys()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst < 1e-5, worst
    base = load_file(tiny_base / "model.safetensors")
    assert max((a[k] - base[k]).abs().max().item() for k in a) > 1e-4  # it did train
    assert metric_losses(tmp_path / "two") == pytest.approx(metric_losses(tmp_path / "one"), abs=1e-5)

    checkpoint = tmp_path / "two" / "checkpoints" / "step-00000002"
    shutil.copytree(checkpoint, tmp_path / "resumed" / "checkpoints" / checkpoint.name)
    torchrun(common + ["--out", str(tmp_path / "resumed"), "--config", str(two)])
    c = load_file(tmp_path / "resumed" / "model.safetensors")
    assert all(torch.equal(b[k], c[k]) for k in b)
    assert metric_losses(tmp_path / "resumed") == metric_losses(tmp_path / "two")[2:]


@pytest.mark.parametrize("damage", ["weights_missing", "weights_truncated", "tokenizer_corrupt"])
def test_a_damaged_base_folder_is_one_line_naming_it(tmp_path, tiny_base, shard_dir, capsys, damage):
    base = tmp_path / "base"
    shutil.copytree(tiny_base, base)
    if damage == "tokenizer_corrupt":
        (base / "tokenizer.json").write_text("not json")
        expected = f"{base}: cannot load its tokenizer"
    else:
        weights = base / "model.safetensors"
        weights.unlink() if damage == "weights_missing" else weights.write_bytes(weights.read_bytes()[:100])
        expected = f"{base}: cannot load the model"
    argv = [
        "sft",
        "--data",
        str(shard_dir),
        "--base",
        str(base),
        "--out",
        str(tmp_path / "o"),
        "--max-steps",
        "1",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"distillery sft: error: {expected}") and len(err.splitlines()) == 1, err
