"""multislerp: barycentric interpolation of several models on the hypersphere (Goddard, 2024).

With v_k the non-base models (their task vectors x_k - base when there is a base), weights w_k
(divided by their sum when `normalize_weights`), n_k = |v_k| and u_k = v_k / (n_k + eps):

    m = sum_k w_k u_k / |sum_k w_k u_k|                         (the weighted mean direction)
    g = sum_k w_k (u_k - <u_k, m> m)                            (tangent vectors at m, averaged)
    merged = (sum_k w_k n_k) (cos(|g|') m + sin(|g|') / |g|' g)  [+ base],  |g|' = |g| + eps

Each tensor is one vector; eps = 1e-8. One model: that model. If the mean direction vanishes
(|sum w_k u_k| < eps), two models are interpolated linearly and more are refused.
Parameters: per model `weight` (1.0); global `normalize_weights` (true), `eps` (1e-8).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..errors import MergeError
from ._sphere import combination, gram
from .base import Method, TensorJob


class Multislerp(Method):
    name = "multislerp"
    optional_base = True
    shared_params = {"normalize_weights": True, "eps": 1e-8}
    model_params = {"weight": 1.0}

    def check_inputs(self, count: int, has_base: bool) -> str | None:
        if count - has_base < 1:
            return f"{self.name} needs at least one model besides the base"
        return None

    def prepare(self, job: TensorJob) -> list[float]:
        others = job.others
        if len(others) == 1:
            return [1.0]
        eps = job.params["eps"]
        weights = torch.tensor([job.model_params[i]["weight"] for i in others], dtype=torch.float64)
        if job.params["normalize_weights"]:
            weights = weights / weights.sum()
        products = gram(job, others, offset=job.base is not None)
        norms = products.diagonal().sqrt()
        mean = weights / (norms + eps)  # in the basis of the v_k
        length = math.sqrt(max(0.0, float(mean @ products @ mean)))
        if length < eps:
            if len(others) == 2:
                return weights.tolist()
            raise MergeError(
                f"multislerp: tensor {job.name}: the weighted mean direction of the models is zero "
                "(opposite models with balancing weights); change the weights"
            )
        mean = mean / length
        dots = (products @ mean) / (norms + eps)
        tangent = weights / (norms + eps) - (weights * dots).sum() * mean
        size = math.sqrt(max(0.0, float(tangent @ products @ tangent))) + eps
        result = math.cos(size) * mean + (math.sin(size) / size) * tangent
        return (result * float((norms * weights).sum())).tolist()

    def combine(self, job: TensorJob, rows: slice, state: Any) -> torch.Tensor:
        others = job.others
        if len(others) == 1:
            return job.rows(others[0], rows).clone()
        return combination(job, others, state, rows, offset=job.base is not None)
