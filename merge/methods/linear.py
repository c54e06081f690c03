"""linear: a weighted average of the models.

    merged = sum_i w_i * x_i / sum_i w_i        (normalize: true, the default)
    merged = sum_i w_i * x_i                    (normalize: false)

Parameters: per model `weight` (default 1.0); global `normalize`. A base model plays no part
(mergekit's linear ignores it as well). Computed in float32 (float64 for float64 inputs).
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import MergeError
from .base import Method, TensorJob


class Linear(Method):
    name = "linear"
    shared_params = {"normalize": True}
    model_params = {"weight": 1.0}
    base_gets_model_params = True

    def prepare(self, job: TensorJob) -> float:
        total = sum(params["weight"] for params in job.model_params)
        if job.params["normalize"] and total == 0:
            raise MergeError(f"linear: the weights for {job.name} sum to zero, so they cannot be normalized")
        return total if job.params["normalize"] else 1.0

    def combine(self, job: TensorJob, rows: slice, state: Any) -> torch.Tensor:
        weights = [job.model_params[i]["weight"] for i in range(len(job.tensors))]
        merged = job.rows(0, rows) * weights[0]
        for index in range(1, len(job.tensors)):
            merged.add_(job.raw(index, rows), alpha=weights[index])
        return merged / state if state != 1.0 else merged
