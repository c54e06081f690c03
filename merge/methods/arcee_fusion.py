"""arcee_fusion: take the other model's change only where it matters (as TinyR1 merged its students).

With base b, other model x, and d = x - b, per row along the last dimension

    kl = sum_j p_j log(p_j / q_j),   p = softmax(x) + 1e-8,  q = softmax(b) + 1e-8
    importance = |d| * kl                      (each row's |d| scaled by that row's divergence)
    threshold = median + 1.5 * (Q3 - Q1)       of the importance values
    merged = b + d * [importance >= threshold]

Quantiles are read from the sorted values at index floor(q * (n - 1)). Tensors of more than
1,000,000 entries estimate them from 1,000,000 entries drawn with replacement by a generator
seeded by the config's seed and the tensor name. Exactly two models, the base being one of them.
"""

from __future__ import annotations

from typing import Any

import torch

from .base import Method, TensorJob

QUANTILE_SAMPLE = 1_000_000
_EPS = 1e-8


class ArceeFusion(Method):
    name = "arcee_fusion"
    needs_base = True
    min_inputs = 2
    max_inputs = 2

    def prepare(self, job: TensorJob) -> tuple[torch.Tensor, float]:
        other = job.others[0]
        # Filled in place: small per-chunk pieces kept across the loop would fragment the heap.
        kl = torch.empty((*job.shape[:-1], 1), dtype=job.compute_dtype)
        for rows in job.chunks():
            kl[rows] = row_kl(job.raw(other, rows), job.raw(job.base, rows), job.compute_dtype)
        if job.numel <= QUANTILE_SAMPLE:
            values = torch.cat(
                [(job.delta(other, rows).abs() * kl[rows]).reshape(-1) for rows in job.chunks()]
            )
        else:
            picks = torch.randint(job.numel, (QUANTILE_SAMPLE,), generator=job.generator("quantiles"))
            flat = job.tensors[other].reshape(-1)[picks].to(job.compute_dtype)
            flat_base = job.tensors[job.base].reshape(-1)[picks].to(job.compute_dtype)
            row_size = job.shape[-1] if job.tensors[0].dim() else 1
            values = (flat - flat_base).abs() * kl.reshape(-1)[picks // row_size]
        return kl, fusion_threshold(values)

    def combine(self, job: TensorJob, rows: slice, state: Any) -> torch.Tensor:
        kl, threshold = state
        base = job.rows(job.base, rows)
        delta = torch.sub(job.raw(job.others[0], rows), base)
        keep = delta.abs().mul_(kl[rows]) >= threshold
        return delta.mul_(keep).add_(base)


def row_kl(x: torch.Tensor, base: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """KL(softmax(x) || softmax(base)) along the last dimension, in `dtype`, as a size-1 last dimension."""
    p = torch.softmax(x, dim=-1, dtype=dtype).add_(_EPS)
    q = torch.softmax(base, dim=-1, dtype=dtype).add_(_EPS)
    ratio = torch.div(p, q, out=q)  # elementwise, so writing over q is safe
    return ratio.log_().mul_(p).sum(dim=-1, keepdim=True)


def fusion_threshold(values: torch.Tensor) -> float:
    """median + 1.5 * IQR, quantiles taken at sorted index floor(q * (n - 1))."""
    ordered = values.reshape(-1).sort().values
    last = ordered.numel() - 1
    q1, median, q3 = (ordered[int(q * last)] for q in (0.25, 0.5, 0.75))
    # In the values' dtype, as the comparison with the importance is.
    return float(median + 1.5 * (q3 - q1))
