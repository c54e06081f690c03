"""nearswap: take the other model's value where it is close to the base's (alchemonaut, 2024).

With a = base and b = the other model, elementwise

    w = clamp(t / max(|a - b|, 1e-6), 0, 1)
    merged = w * b + (1 - w) * a

so entries that differ by at most t are swapped for b's, and larger differences move b-wards by
t / |a - b| of the way. Parameters: global `t` (required, a distance in weight units). Exactly
two models, one of them the base.
"""

from __future__ import annotations

from typing import Any

import torch

from ..config import Required
from .base import Method, TensorJob


class Nearswap(Method):
    name = "nearswap"
    needs_base = True
    min_inputs = 2
    max_inputs = 2
    shared_params = {"t": Required(float)}

    def combine(self, job: TensorJob, rows: slice, state: Any) -> torch.Tensor:
        a = job.rows(job.base, rows)
        b = job.rows(job.others[0], rows)
        weight = (job.params["t"] / torch.sub(a, b).abs_().clamp_(min=1e-6)).clamp_(0, 1)
        return weight * b + (1 - weight) * a
