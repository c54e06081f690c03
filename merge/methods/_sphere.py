"""Whole-tensor geometry for the spherical methods (karcher, multislerp, nuslerp).

Their results are linear combinations of the input vectors v_k (the models, or their task
vectors when there is a base) with coefficients that depend only on the inner products
<v_i, v_j>. So one streaming pass gathers the Gram matrix in float64, the coefficients are
worked out on that small matrix, and `combine` forms sum_k c_k v_k chunk by chunk.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .base import TensorJob


def vector_rows(job: TensorJob, index: int, rows: slice, offset: bool) -> torch.Tensor:
    """Rows of input `index`, minus the base's when `offset` (a tensor that must not be modified)."""
    return job.delta(index, rows) if offset else job.rows(index, rows)


def gram(job: TensorJob, indices: Sequence[int], offset: bool) -> torch.Tensor:
    """G[a, b] = <v_indices[a], v_indices[b]> over the whole tensor, in float64."""
    total = torch.zeros(len(indices), len(indices), dtype=torch.float64)
    for rows in job.chunks():
        stacked = torch.stack([vector_rows(job, i, rows, offset).reshape(-1).double() for i in indices])
        total += stacked @ stacked.T
    return total


def combination(
    job: TensorJob, indices: Sequence[int], coefficients: Sequence[float], rows: slice, offset: bool
) -> torch.Tensor:
    """sum_k c_k v_k on `rows`, plus the base's rows when `offset`."""
    merged = (
        job.rows(job.base, rows).clone()
        if offset
        else torch.zeros(job.raw(indices[0], rows).shape, dtype=job.compute_dtype)
    )
    for index, coefficient in zip(indices, coefficients, strict=True):
        merged.add_(vector_rows(job, index, rows, offset), alpha=float(coefficient))
    return merged
