"""model_stock: move from the base towards the models' average by how much they agree
(Jang et al., 2024, "Model Stock").

With offsets o_i = x_i - base for the N >= 2 non-base models, cos = the mean over pairs i < j of
<o_i, o_j> / max(|o_i| |o_j|, 1e-6) (each clamped to [-1, 1]):

    t = N cos / (1 + (N - 1) cos)        (t = 0 where |1 + (N - 1) cos| < 1e-6)
    merged = t * mean_i(x_i) + (1 - t) * base

By default each tensor is one vector; `filter_wise: true` computes t per row (along the last
dimension). Needs a base and at least two other models.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import torch

from .base import Method, TensorJob


class ModelStock(Method):
    name = "model_stock"
    needs_base = True
    min_inputs = 3
    shared_params = {"filter_wise": False}

    def prepare(self, job: TensorJob) -> torch.Tensor | None:
        if job.params["filter_wise"]:
            return None  # t is per row, computed chunk by chunk
        dots = None
        for rows in job.chunks():
            offsets = [job.delta(i, rows).reshape(-1) for i in job.others]
            chunk = _pair_stats(offsets, dim=-1)
            dots = chunk if dots is None else [a + b for a, b in zip(dots, chunk, strict=True)]
        return _interpolation(dots, len(job.others), job.compute_dtype)

    def combine(self, job: TensorJob, rows: slice, state: Any) -> torch.Tensor:
        base = job.rows(job.base, rows)
        if state is None:
            offsets = [job.delta(i, rows) for i in job.others]
            view = [o if o.dim() else o.reshape(1) for o in offsets]
            state = _interpolation(_pair_stats(view, dim=-1, keepdim=True), len(offsets), job.compute_dtype)
        average = sum(job.rows(i, rows) for i in job.others) / len(job.others)
        return state * average + (1 - state) * base


def _pair_stats(offsets: list[torch.Tensor], dim: int, keepdim: bool = False) -> list[torch.Tensor]:
    """[|o_i|^2 for each i] + [<o_i, o_j> for each pair], reduced over `dim`, in float64."""
    squares = [o.double().square().sum(dim=dim, keepdim=keepdim) for o in offsets]
    products = [(a.double() * b.double()).sum(dim=dim, keepdim=keepdim) for a, b in combinations(offsets, 2)]
    return squares + products


def _interpolation(stats: list[torch.Tensor], count: int, dtype: torch.dtype) -> torch.Tensor:
    norms = [square.sqrt() for square in stats[:count]]
    cosines = [
        (product / (norms[i] * norms[j]).clamp(min=1e-6)).clamp(-1, 1)
        for product, (i, j) in zip(stats[count:], combinations(range(count), 2), strict=True)
    ]
    cos = torch.stack(cosines).mean(dim=0)
    denominator = 1 + (count - 1) * cos
    singular = denominator.abs() < 1e-6
    t = torch.where(singular, torch.zeros_like(cos), count * cos / torch.where(singular, 1.0, denominator))
    return t.to(dtype)
