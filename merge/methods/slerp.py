"""slerp: spherical linear interpolation between the base (t = 0) and the other model (t = 1).

Each tensor is one vector. With a = base, b = other, cos(theta) = <a/|a|, b/|b|> (clamped to
[-1, 1]; a norm below 1e-8 counts as 1):

    merged = sin((1 - t) theta) / sin(theta) * a + sin(t theta) / sin(theta) * b
    merged = (1 - t) a + t b          when |cos(theta)| > 0.9995 (nearly collinear: plain lerp)

Parameters: global `t` (required), usually a gradient across layers such as [0, 0.5, 1] or a
list of {filter: self_attn, value: ...}. Exactly two models, one of them the base.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..config import Required
from .base import Method, TensorJob

_COLLINEAR = 0.9995
_EPS = 1e-8


class Slerp(Method):
    name = "slerp"
    needs_base = True
    min_inputs = 2
    max_inputs = 2
    shared_params = {"t": Required(float)}

    def prepare(self, job: TensorJob) -> tuple[float, float]:
        other = job.others[0]
        norm_a = math.sqrt(
            sum(float(job.rows(job.base, r).square().sum(dtype=torch.float64)) for r in job.chunks())
        )
        norm_b = math.sqrt(
            sum(float(job.rows(other, r).square().sum(dtype=torch.float64)) for r in job.chunks())
        )
        norm_a = norm_a if norm_a > _EPS else 1.0
        norm_b = norm_b if norm_b > _EPS else 1.0
        dot = sum(
            float((job.rows(job.base, r) / norm_a * (job.rows(other, r) / norm_b)).sum(dtype=torch.float64))
            for r in job.chunks()
        )
        return slerp_coefficients(min(1.0, max(-1.0, dot)), job.params["t"])

    def combine(self, job: TensorJob, rows: slice, state: Any) -> torch.Tensor:
        coef_a, coef_b = state
        return job.rows(job.base, rows) * coef_a + job.rows(job.others[0], rows) * coef_b


def slerp_coefficients(cos_theta: float, t: float) -> tuple[float, float]:
    """The weights of a and b for interpolation parameter t at angle acos(cos_theta)."""
    if abs(cos_theta) > _COLLINEAR:
        return 1 - t, t
    theta = math.acos(cos_theta)
    return math.sin((1 - t) * theta) / math.sin(theta), math.sin(t * theta) / math.sin(theta)
