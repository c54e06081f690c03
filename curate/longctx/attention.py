"""Attention of one layer of a local causal LM, computed in query chunks.

LongAttn needs, for every token, how much attention it puts on tokens far behind it. Asking
transformers for `output_attentions=True` materialises an L x L matrix per head for *every* layer
(eager attention only), which at L = 32k is hundreds of GB. Here the model runs only up to the chosen
layer (later layers are not even loaded), the layer's input is caught with a hook, and its queries
and keys are rebuilt from the layer's own `q_proj`/`k_proj` (+ q/k norms where the architecture has
them) and rotary embedding. The softmax is then taken one block of `chunk` queries at a time, so the
largest tensor alive is heads x chunk x L, never heads x L x L.

Supported: decoder-only models whose attention modules expose `q_proj`, `k_proj`, `head_dim`,
`scaling` and a module-level `apply_rotary_pos_emb` (Llama, Qwen2/2.5/3, Mistral and their kin).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from curate.errors import CurateError

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class _Caught(Exception):
    """Raised by the hook to stop the forward pass once the chosen layer's input is known."""


@dataclass
class LayerModel:
    """A model cut after one layer, and that layer's attention module."""

    model: nn.Module
    attention: nn.Module
    layer: int

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The model's list of decoder blocks (`model.layers` in Llama-style models)."""
    for name, module in model.named_modules():
        if name.split(".")[-1] == "layers" and isinstance(module, nn.ModuleList):
            return module
    raise CurateError(
        f"{type(model).__name__}: no decoder `layers` list found; LongAttn needs a decoder-only LM"
    )


def load_layer_model(
    model_dir: str | Path, layer: int, dtype: str = "float32", device: str = "cpu"
) -> LayerModel:
    """Load only layers 0..`layer` of a local causal LM (the released LongAttn code likewise cuts a
    70B model down to its first layer), with SDPA attention for the layers before the chosen one."""
    from transformers import AutoConfig, AutoModel

    if dtype not in DTYPES:
        raise CurateError(f"unknown dtype {dtype!r} (known: {', '.join(DTYPES)})")
    try:
        config = AutoConfig.from_pretrained(model_dir)
    except (OSError, ValueError) as error:
        raise CurateError(f"{model_dir}: cannot read the model config: {error}") from error
    if not 0 <= layer < config.num_hidden_layers:
        raise CurateError(
            f"{model_dir}: layer {layer} out of range (the model has {config.num_hidden_layers})"
        )
    config.num_hidden_layers = layer + 1
    if getattr(config, "layer_types", None):
        config.layer_types = config.layer_types[: layer + 1]
    with _quiet_transformers():
        # the weights of the layers after `layer` (and the LM head) are left unloaded on purpose
        model = AutoModel.from_pretrained(
            model_dir, config=config, dtype=DTYPES[dtype], attn_implementation="sdpa"
        )
    model.to(device).eval()
    attention = getattr(decoder_layers(model)[layer], "self_attn", None)
    missing = [a for a in ("q_proj", "k_proj", "head_dim", "scaling") if not hasattr(attention, a)]
    if attention is None or missing:
        raise CurateError(
            f"{type(model).__name__}: unsupported attention module (needs q_proj, k_proj, head_dim, scaling)"
        )
    return LayerModel(model, attention, layer)


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' load report (it lists every weight we chose not to load) and its bar."""
    from transformers.utils import logging as hf_logging

    verbosity, bar = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bar:
            hf_logging.enable_progress_bar()


def _project(attention: nn.Module, proj: str, norm: str, hidden: torch.Tensor) -> torch.Tensor:
    """(batch, heads, n, head_dim) from one projection, with the q/k norm where the model has one
    (Qwen3 normalises each head, OLMo2 the whole projection)."""
    states = getattr(attention, proj)(hidden)
    norm_module = getattr(attention, norm, None)
    per_head = norm_module is not None and norm_module.weight.numel() == attention.head_dim
    if norm_module is not None and not per_head:
        states = norm_module(states)
    states = states.view(*hidden.shape[:-1], -1, attention.head_dim)
    if per_head:
        states = norm_module(states)
    return states.transpose(1, 2)


@torch.no_grad()
def layer_queries_keys(lm: LayerModel, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotated queries and keys of the chosen layer for one sequence: two (heads, n, head_dim) tensors,
    keys repeated to the number of query heads (grouped-query attention), queries pre-scaled."""
    caught: dict[str, Any] = {}

    def hook(_module: nn.Module, args: tuple, kwargs: dict) -> None:
        caught["hidden"] = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
        caught["rope"] = kwargs.get("position_embeddings")
        raise _Caught

    handle = lm.attention.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        lm.model(input_ids=input_ids.view(1, -1).to(lm.device), use_cache=False)
    except _Caught:
        pass
    finally:
        handle.remove()
    if "hidden" not in caught:
        raise CurateError("the chosen layer's attention was never called")
    attention, hidden = lm.attention, caught["hidden"]
    query = _project(attention, "q_proj", "q_norm", hidden)
    key = _project(attention, "k_proj", "k_norm", hidden)
    if caught["rope"] is not None:
        rotary = sys.modules[type(attention).__module__].apply_rotary_pos_emb
        cos, sin = caught["rope"]
        query, key = rotary(query, key, cos, sin)
    groups = query.shape[1] // key.shape[1]
    key = key.repeat_interleave(groups, dim=1) if groups > 1 else key
    return query[0] * attention.scaling, key[0]


def attention_chunks(
    query: torch.Tensor, key: torch.Tensor, chunk: int, first: int = 0
) -> Iterator[tuple[int, torch.Tensor]]:
    """Causal attention probabilities of the queries from `first` on, `chunk` at a time: yields
    (start, probs) with probs of shape (heads, rows, start + rows) in float32. Queries must be pre-scaled.

    Only keys up to the chunk's last query are used (the rest are masked anyway) and the softmax is
    done in place, so a chunk costs one heads x chunk x L float32 tensor. The consumer must drop its
    reference before asking for the next chunk, so that only one is ever alive."""
    n = query.shape[1]
    for start in range(first, n, chunk):
        end = min(start + chunk, n)
        scores = torch.matmul(query[:, start:end].float(), key[:, :end].float().transpose(1, 2))
        rows = torch.arange(start, end, device=scores.device).unsqueeze(1)
        future = torch.arange(end, device=scores.device).unsqueeze(0) > rows
        scores.masked_fill_(future, float("-inf"))
        scores.sub_(scores.amax(dim=-1, keepdim=True)).exp_()
        scores.div_(scores.sum(dim=-1, keepdim=True))
        yield start, scores
        del scores


def far_attention_mass(query: torch.Tensor, key: torch.Tensor, distance: int, chunk: int) -> torch.Tensor:
    """(heads, n): for each head and token i, the attention mass token i puts on tokens j <= i - distance
    (zero for the first `distance` tokens, which cannot reach that far)."""
    heads, n = query.shape[0], query.shape[1]
    mass = torch.zeros(heads, n, dtype=torch.float32)
    for start, probs in attention_chunks(query, key, chunk, first=distance):
        end = start + probs.shape[1]
        rows = torch.arange(start, end, device=probs.device).unsqueeze(1)
        near = torch.arange(end, device=probs.device).unsqueeze(0) > rows - distance
        mass[:, start:end] = probs.masked_fill_(near, 0.0).sum(dim=-1).cpu()
        del probs  # free this block before the next is computed
    return mass
