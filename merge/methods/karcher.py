"""karcher: the Riemannian (Karcher) mean of the models' directions, scaled by their mean norm.

With x_k the N models (a base, if given, is one more model), n_k = |x_k| and u_k = x_k / n_k for
the models with n_k > tol, weights a_k = 1 / N renormalised over those models:

    m = sum_k a_k u_k / |sum_k a_k u_k|            (u of the first such model if that norm < tol)
    repeat up to max_iter times:
        theta_k = acos(clamp(<m, u_k>, -1, 1))
        g = sum_{k: theta_k >= tol} a_k theta_k / sin(theta_k) (u_k - <m, u_k> m)   (the log map)
        stop when |g| < tol
        m = cos(|g|) m + sin(|g|) g / |g|, renormalised to unit length       (the exp map)
    merged = (sum_k n_k / N) * m

Each tensor is one vector. Parameters: global `max_iter` (10), `tol` (1e-5). m stays a
combination of the u_k, so the iteration runs on their Gram matrix (see _sphere.py).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ._sphere import combination, gram
from .base import Method, TensorJob


class Karcher(Method):
    name = "karcher"
    optional_base = True  # a base_model is one more model to average, as in mergekit
    shared_params = {"max_iter": 10, "tol": 1e-5}
    model_params = {}

    def prepare(self, job: TensorJob) -> list[float]:
        count = len(job.tensors)
        if count == 1:
            return [1.0]
        tol = job.params["tol"]
        products = gram(job, range(count), offset=False)
        norms = products.diagonal().sqrt()
        valid = [k for k in range(count) if float(norms[k]) > tol]
        if not valid:
            return [0.0] * count
        units = products[valid][:, valid] / torch.outer(norms[valid], norms[valid])
        alphas = torch.full((len(valid),), 1 / len(valid), dtype=torch.float64)
        mean = _unit(alphas, units, tol, fallback=0)
        for _ in range(job.params["max_iter"]):
            dots = (units @ mean).clamp(-1, 1)
            tangent = torch.zeros_like(mean)
            for k in range(len(valid)):
                theta = math.acos(float(dots[k]))
                if theta < tol:
                    continue
                step = -float(dots[k]) * mean
                step[k] += 1.0
                tangent += alphas[k] * (theta / math.sin(theta)) * step
            length = _length(tangent, units)
            if length < tol:
                break
            mean = math.cos(length) * mean + math.sin(length) * tangent / length
            norm = _length(mean, units)
            if norm > tol:
                mean = mean / norm
        scale = float(norms.sum()) / count
        coefficients = [0.0] * count
        for slot, k in enumerate(valid):
            coefficients[k] = scale * float(mean[slot]) / float(norms[k])
        return coefficients

    def combine(self, job: TensorJob, rows: slice, state: Any) -> torch.Tensor:
        return combination(job, range(len(job.tensors)), state, rows, offset=False)


def _length(coefficients: torch.Tensor, units: torch.Tensor) -> float:
    return math.sqrt(max(0.0, float(coefficients @ units @ coefficients)))


def _unit(coefficients: torch.Tensor, units: torch.Tensor, tol: float, fallback: int) -> torch.Tensor:
    length = _length(coefficients, units)
    if length < tol:
        unit = torch.zeros_like(coefficients)
        unit[fallback] = 1.0
        return unit
    return coefficients / length
