"""Fixtures for the merge tests: tiny Qwen2 checkpoints built from configs (a shared base plus
students with small deltas). Helpers reach tests through the `tiny` fixture, so no test imports this file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file


def tiny_config(**overrides) -> dict:
    config = dict(
        vocab_size=96,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=False,
    )
    config.update(overrides)
    return config


def build_model(
    directory: Path,
    seed: int,
    base: dict | None = None,
    scale: float = 0.02,
    dtype: torch.dtype = torch.float32,
    llama: bool = False,
    **config_overrides,
) -> dict[str, torch.Tensor]:
    """Save a Qwen2 (or Llama) model (random, or `base` plus seeded noise) with safetensors; return its state dict."""
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    config_class, model_class = (LlamaConfig, LlamaForCausalLM) if llama else (Qwen2Config, Qwen2ForCausalLM)
    model = model_class(config_class(**tiny_config(**config_overrides)))
    if base is not None:
        generator = torch.Generator().manual_seed(seed)
        state = {
            name: value + scale * torch.randn(value.shape, generator=generator)
            for name, value in base.items()
        }
        model.load_state_dict(state, strict=False)
    model.to(dtype).save_pretrained(directory)
    write_tokenizer(directory, model.config.vocab_size)
    return load_dir(directory)


def write_tokenizer(directory: Path, vocab: int, rename: dict[int, str] | None = None) -> None:
    """A minimal tokenizer.json (enough for the vocabulary checks and the file copy)."""
    names = [f"tok{i}" for i in range(vocab)]
    for token_id, token in (rename or {}).items():
        names[token_id] = token
    tokens = {name: index for index, name in enumerate(names)}
    (directory / "tokenizer.json").write_text(json.dumps({"model": {"type": "BPE", "vocab": tokens}}))
    (directory / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 64}))


def load_dir(directory: Path) -> dict[str, torch.Tensor]:
    state = {}
    for file in sorted(Path(directory).glob("*.safetensors")):
        state.update(load_file(file))
    return state


def save_state(directory: Path, state: dict[str, torch.Tensor], config: dict) -> Path:
    """A model folder from a hand-made state dict (for checks on broken or odd checkpoints)."""
    directory.mkdir(parents=True, exist_ok=True)
    save_file({name: value.contiguous() for name, value in state.items()}, directory / "model.safetensors")
    (directory / "config.json").write_text(json.dumps(config))
    return directory


@pytest.fixture(scope="session")
def tiny() -> SimpleNamespace:
    """The helpers above: build, load, save_state, write_tokenizer, config."""
    return SimpleNamespace(
        build=build_model,
        load=load_dir,
        save_state=save_state,
        write_tokenizer=write_tokenizer,
        config=tiny_config,
    )


@pytest.fixture(scope="session")
def zoo(tmp_path_factory) -> dict[str, Path]:
    """base, three float32 students s0..s2 of it, a tied-embedding family (tbase, t0, t1), and a
    4-layer Llama base with two students (dbase, d0, d1) for layer stacking (Llama: mergekit cannot
    restack a config with per-layer `layer_types`, which transformers 5 writes for Qwen2)."""
    root = tmp_path_factory.mktemp("zoo")
    base = build_model(root / "base", 0)
    for index in range(3):
        build_model(root / f"s{index}", 100 + index, base)
    tied = build_model(root / "tbase", 7, tie_word_embeddings=True)
    for index in range(2):
        build_model(root / f"t{index}", 200 + index, tied, tie_word_embeddings=True)
    deep = build_model(root / "dbase", 8, llama=True, num_hidden_layers=4)
    for index in range(2):
        build_model(root / f"d{index}", 300 + index, deep, llama=True, num_hidden_layers=4)
    return {path.name: path for path in root.iterdir()}


@pytest.fixture()
def write_config(tmp_path) -> Callable[[dict], Path]:
    def write(config: dict, name: str = "merge.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    return write
