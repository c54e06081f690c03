"""Attention for packed rows: each sample attends only to itself, causally.

Registered in transformers' AttentionInterface under NAME. The packed row carries the sample
boundaries as `cu_seq_lens_q` (cumulative lengths, int32), which transformers passes through the
model's forward to this function untouched. Because NAME has no mask function registered,
transformers builds no (T x T) mask at all: isolation is exact by construction, not by masking.

- CUDA: torch's varlen flash attention (`torch.nn.attention.varlen.varlen_attn`).
- CPU (and CUDA fallback): one causal SDPA call per sample. With samples of a few hundred tokens in
  a budget of thousands, this is ~10x cheaper than a block-diagonal mask over the whole row,
  because the cost is sum(len_i^2), not T^2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

NAME = "distill_packed"


def _varlen_cuda(query, key, value, cu_seqlens, max_len, scaling):
    from torch.nn.attention.varlen import varlen_attn

    # The flash kernel takes bf16/fp16 only. Under autocast, RoPE leaves q and k in float32 (cos/sin
    # follow the float32 residual stream), so cast all three to the autocast dtype, as SDPA would.
    dtype = torch.get_autocast_dtype("cuda") if torch.is_autocast_enabled("cuda") else value.dtype
    # (1, H, T, D) -> (T, H, D), the layout of the varlen kernel.
    q, k, v = (t[0].transpose(0, 1).to(dtype) for t in (query, key, value))
    out = varlen_attn(
        q,
        k,
        v,
        cu_seqlens,
        cu_seqlens,
        max_len,
        max_len,
        scale=scaling,
        window_size=(-1, 0),
        enable_gqa=q.shape[1] != k.shape[1],
    )
    return out.unsqueeze(0)


def _per_sample(query, key, value, cu_seqlens, scaling, dropout):
    groups = query.shape[1] // key.shape[1]
    if groups > 1:
        # Expanding K/V once is cheaper on CPU than SDPA's enable_gqa path, which leaves the fast kernel.
        key, value = key.repeat_interleave(groups, dim=1), value.repeat_interleave(groups, dim=1)
    bounds = cu_seqlens.tolist()
    outputs = [
        F.scaled_dot_product_attention(
            query[:, :, start:end],
            key[:, :, start:end],
            value[:, :, start:end],
            is_causal=True,
            scale=scaling,
            dropout_p=dropout,
        )
        for start, end in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    return torch.cat(outputs, dim=2).transpose(1, 2)


def packed_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    sliding_window: int | None = None,
    softcap: float | None = None,
    cu_seq_lens_q: torch.Tensor | None = None,
    max_length_q: int | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """Causal attention restricted to each packed sample; returns (batch, T, heads, head_dim)."""
    if sliding_window is not None or softcap is not None:
        raise NotImplementedError(f"{NAME} attention supports neither sliding windows nor logit soft-capping")
    if query.shape[0] != 1:
        raise ValueError(f"{NAME} attention expects one packed row per forward, got batch {query.shape[0]}")
    length = query.shape[2]
    if cu_seq_lens_q is None:  # one unpacked sequence, e.g. an evaluation forward without a cache
        if key.shape[2] != length:
            raise ValueError(f"{NAME} attention is for training forwards; use 'sdpa' with a KV cache")
        cu_seq_lens_q = torch.tensor([0, length], dtype=torch.int32, device=query.device)
        max_length_q = length
    if (
        query.is_cuda
        and dropout == 0.0
        and (torch.is_autocast_enabled("cuda") or value.dtype != torch.float32)
    ):
        return _varlen_cuda(query, key, value, cu_seq_lens_q, max_length_q, scaling), None
    return _per_sample(query, key, value, cu_seq_lens_q, scaling, dropout), None


def register() -> str:
    """Make NAME a valid `attn_implementation` for transformers models; returns NAME."""
    from transformers import AttentionInterface

    AttentionInterface.register(NAME, packed_attention)
    return NAME
