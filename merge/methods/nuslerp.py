"""nuslerp: slerp between two models by their weights, optionally of task vectors or per row.

With the two non-base models' vectors v_0, v_1 (their task vectors x_i - base when there is a
base), t = w_1 / (w_0 + w_1) (0.5 when |w_0 + w_1| < 1e-6), and
cos(theta) = <v_0, v_1> / (max(|v_0|, 1e-7) max(|v_1|, 1e-7)) clamped to [-1, 1]:

    merged = (sin((1 - t) theta) v_0 + sin(t theta) v_1) / sin(theta)     [+ base]
    merged = (1 - t) v_0 + t v_1                                          when 1 - cos^2 <= 1e-16

The vectors are the whole tensor (`nuslerp_flatten: true`, the default), else each row along the
last dimension, or each column (`nuslerp_row_wise: true`, vectors along the first dimension).
A 1-D tensor is always one vector. Parameters: per model `weight` (required); global
`nuslerp_flatten` (true), `nuslerp_row_wise` (false).
"""

from __future__ import annotations

from typing import Any

import torch

from ..config import Required
from .base import Method, TensorJob

_NORM_EPS = 1e-7
_COLLINEAR_EPS = 1e-8


class Nuslerp(Method):
    name = "nuslerp"
    optional_base = True
    shared_params = {"nuslerp_flatten": True, "nuslerp_row_wise": False}
    model_params = {"weight": Required(float)}

    def check_inputs(self, count: int, has_base: bool) -> str | None:
        if count - has_base != 2:
            return f"{self.name} takes exactly 2 models besides the base, got {count - has_base}"
        return None

    def _vectors(self, job: TensorJob, rows: slice) -> tuple[torch.Tensor, torch.Tensor]:
        first, second = job.others
        if job.base is None:
            return job.rows(first, rows), job.rows(second, rows)
        return job.delta(first, rows), job.delta(second, rows)

    def _mode(self, job: TensorJob) -> str:
        if job.params["nuslerp_flatten"] or job.tensors[0].dim() < 2:
            return "tensor"
        return "columns" if job.params["nuslerp_row_wise"] else "rows"

    def prepare(self, job: TensorJob) -> Any:
        first, second = (job.model_params[i]["weight"] for i in job.others)
        total = first + second
        t = 0.5 if abs(total) < 1e-6 else second / total
        mode = self._mode(job)
        if mode == "rows":
            return t, None  # per row: worked out chunk by chunk
        dims = None if mode == "tensor" else 0
        stats = None
        for rows in job.chunks():
            a, b = (v.double() for v in self._vectors(job, rows))
            chunk = [_reduce(a * b, dims), _reduce(a * a, dims), _reduce(b * b, dims)]
            stats = chunk if stats is None else [s + c for s, c in zip(stats, chunk, strict=True)]
        return t, _coefficients(*stats, t)

    def combine(self, job: TensorJob, rows: slice, state: Any) -> torch.Tensor:
        t, coefficients = state
        a, b = self._vectors(job, rows)
        if coefficients is None:
            da, db = a.double(), b.double()
            coefficients = _coefficients(
                (da * db).sum(-1, keepdim=True),
                (da * da).sum(-1, keepdim=True),
                (db * db).sum(-1, keepdim=True),
                t,
            )
        coef_a, coef_b = (c.to(job.compute_dtype) for c in coefficients)
        merged = a * coef_a + b * coef_b
        return merged.add_(job.rows(job.base, rows)) if job.base is not None else merged


def _reduce(values: torch.Tensor, dim: int | None) -> torch.Tensor:
    return values.sum() if dim is None else values.sum(dim=dim)


def _coefficients(
    dot: torch.Tensor, square_a: torch.Tensor, square_b: torch.Tensor, t: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The weights of v_0 and v_1, elementwise over the vectors' statistics."""
    cos = (dot / (square_a.sqrt().clamp(min=_NORM_EPS) * square_b.sqrt().clamp(min=_NORM_EPS))).clamp(-1, 1)
    collinear = (1 - cos.square()) <= _COLLINEAR_EPS**2
    theta = torch.acos(torch.where(collinear, 0.0, cos))
    sin = torch.sin(theta)
    coef_a = torch.where(collinear, 1 - t, torch.sin((1 - t) * theta) / sin)
    coef_b = torch.where(collinear, t, torch.sin(t * theta) / sin)
    return coef_a, coef_b
