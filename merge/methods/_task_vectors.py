"""The task-vector family: task_arithmetic, ties, dare_*, breadcrumbs*, della*.

Each non-base model i gives a task vector d_i = x_i - base. Optionally it is sparsified to a
fraction `density` of its entries (which entries: see `Sparsify`) and rescaled; then

    w_i d_i                       weighted
    m_i = [sign(w_i d_i) == s]    with s = sign(sum_i w_i d_i) (+1 on ties): sign consensus (TIES)
    merged = base + lambda * sum_i w_i d_i m_i / D

where m_i = 1 without consensus, and D = sum_i w_i m_i (elementwise, 1 where it is 0) when
`normalize` is true, else 1. With `rescale: true` each sparsified vector is multiplied by
|d_i|_1 / |kept d_i|_1 (1 when either is below 1e-7), so it keeps its L1 norm. The modules of
the methods say which steps they use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ._select import kth_largest, magnitude_of
from .base import Method, TensorJob

_RESCALE_EPS = 1e-7


class Sparsify:
    """Which entries of a task vector survive (density < 1 only; density >= 1 keeps them all)."""

    MAGNITUDE = "magnitude"  # the k = max(1, int(density * numel)) largest |d| (TIES)
    RANDOM = "random"  # each entry with probability density (DARE)
    OUTLIERS = (
        "outliers"  # the int(density * numel) largest |d| after the int(gamma * numel) largest (breadcrumbs)
    )
    RANKED = "ranked"  # each entry with a probability that grows with its |d| rank in its row (DELLA)


@dataclass(frozen=True)
class Keep:
    """How one model's task vector is sparsified: |d| bounds (magnitude and outliers) and its rescale factor."""

    low: float = 0.0
    high: float = math.inf
    scale: float = 1.0


class TaskVectorMethod(Method):
    needs_base = True
    min_inputs = 2
    sparsify: ClassVar[str | None] = None  # one of the Sparsify names
    consensus: ClassVar[bool] = False
    shared_params = {"lambda": 1.0, "normalize": False, "rescale": False, "int8_mask": False}
    model_params = {"weight": 1.0, "density": 1.0}

    def sparse(self, job: TensorJob, index: int) -> bool:
        return self.sparsify is not None and job.model_params[index]["density"] < 1

    def prepare(self, job: TensorJob) -> dict[int, Keep | None]:
        """Per non-base model: its Keep, or None when it is not sparsified."""
        n = job.numel
        bounds: dict[int, dict[str, float]] = {}
        requests = {}
        for index in job.others:
            if not self.sparse(job, index):
                continue
            params = job.model_params[index]
            bounds[index] = {}
            if self.sparsify == Sparsify.MAGNITUDE:
                if params["density"] <= 0:
                    bounds[index]["low"] = math.inf  # keeps nothing
                else:
                    requests[index, "low"] = (
                        magnitude_of(index, job.base),
                        max(1, int(params["density"] * n)),
                    )
            elif self.sparsify == Sparsify.OUTLIERS:
                target = int(params["density"] * n)
                top = int(params["gamma"] * n)
                bottom = max(0, n - target - top)  # fewer outliers dropped when density needs them
                if target == 0:
                    bounds[index]["low"] = math.inf
                else:
                    score = magnitude_of(index, job.base)
                    requests[index, "high"] = (score, n - bottom - target + 1)
                    requests[index, "low"] = (score, n - bottom)
        for (index, bound), value in kth_largest(job, requests).items():
            bounds[index][bound] = value
        state: dict[int, Keep | None] = dict.fromkeys(job.others)
        for index, found in bounds.items():
            keep = Keep(**found)
            if job.params["rescale"]:
                keep = Keep(keep.low, keep.high, _l1_rescale(job, index, keep, self))
            state[index] = keep
        return state

    def mask(self, job: TensorJob, index: int, rows: slice, delta: torch.Tensor, keep: Keep) -> torch.Tensor:
        """`delta` (rows of model `index`'s task vector, modified in place) with the dropped entries zeroed."""
        density = job.model_params[index]["density"]
        if self.sparsify == Sparsify.MAGNITUDE:
            return _keep_at_least(delta, keep.low)
        if self.sparsify == Sparsify.OUTLIERS:
            magnitude = delta.abs()
            return delta.mul_((magnitude >= keep.low) & (magnitude <= keep.high))
        if self.sparsify == Sparsify.RANDOM:
            generator = job.generator("dare", index, rows.start)  # the same mask in prepare and combine
            return delta.mul_(torch.rand(delta.shape, generator=generator, dtype=torch.float32) < density)
        generator = job.generator("della", index, rows.start)
        epsilon = job.model_params[index]["epsilon"]
        return delta.mul_(
            torch.rand(delta.shape, generator=generator, dtype=torch.float32)
            < _ranked_probability(delta, density, epsilon)
        )

    def sparse_delta(
        self, job: TensorJob, index: int, rows: slice, base: torch.Tensor, state: Any
    ) -> torch.Tensor:
        """The (sparsified, rescaled) task vector of input `index` on `rows`, in a fresh tensor."""
        delta = torch.sub(job.raw(index, rows), base)
        keep = state[index]
        if keep is None:
            return delta
        delta = self.mask(job, index, rows, delta, keep)
        return delta.mul_(keep.scale) if keep.scale != 1.0 else delta

    def combine(self, job: TensorJob, rows: slice, state: Any) -> torch.Tensor:
        base = job.rows(job.base, rows)
        weights = [job.model_params[i]["weight"] for i in job.others]
        deltas = []
        for index, weight in zip(job.others, weights, strict=True):
            delta = self.sparse_delta(job, index, rows, base, state)
            deltas.append(delta.mul_(weight) if weight != 1 else delta)
        if self.consensus:
            mixed, divisor = _agreeing_sum(deltas, weights)
        else:
            mixed = sum(deltas[1:], deltas[0])
            total = sum(weights)
            divisor = 1.0 if abs(total) < 1e-8 else total
        if job.params["normalize"]:
            mixed.div_(divisor)
        if job.params["lambda"] != 1:
            mixed.mul_(job.params["lambda"])
        return mixed.add_(base)


def _agreeing_sum(deltas: list[torch.Tensor], weights: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """TIES' disjoint merge: the sum of the weighted deltas whose sign is the elected one, and
    the sum of their weights (1 where none agrees). Written with cheap elementwise ops only."""
    # The elected sign, +1 where the sum is 0: sign(sign(x) + 0.5) maps -1, 0, +1 to -1, +1, +1.
    elected = deltas[0].clone()
    for delta in deltas[1:]:
        elected.add_(delta)
    elected.sign_().add_(0.5).sign_()
    magnitude = torch.zeros_like(elected)
    divisor = torch.zeros_like(elected)
    for delta, weight in zip(deltas, weights, strict=True):
        agreeing = delta.mul_(elected).relu_()  # |w d| where sign(w d) is the elected sign, else 0
        magnitude.add_(agreeing)
        divisor.add_(agreeing.sign_(), alpha=weight)
    divisor.add_(divisor == 0)
    return magnitude.mul_(elected), divisor


def _keep_at_least(delta: torch.Tensor, threshold: float) -> torch.Tensor:
    """delta where |delta| >= threshold, else 0 (hardshrink keeps |x| > lambda, so step just below)."""
    if threshold <= 0:
        return delta
    if math.isinf(threshold):
        return delta.zero_()
    below = torch.nextafter(torch.tensor(threshold, dtype=delta.dtype), torch.tensor(0.0, dtype=delta.dtype))
    return torch.nn.functional.hardshrink(delta, float(below))


def _ranked_probability(delta: torch.Tensor, density: float, epsilon: float) -> torch.Tensor:
    """DELLA's keep probability: density - epsilon for the smallest |d| of a row, rising linearly with
    the rank to density + epsilon for the largest (rows along the last dimension)."""
    magnitude = delta.abs().reshape(-1, delta.shape[-1]) if delta.dim() else delta.abs().reshape(1, 1)
    order = magnitude.argsort(dim=-1)
    positions = torch.arange(magnitude.shape[-1], dtype=torch.float32).expand(order.shape)
    ranks = torch.empty(order.shape, dtype=torch.float32).scatter_(-1, order, positions)  # 0 for the smallest
    width = magnitude.shape[-1] - 1
    position = ranks / width if width > 0 else torch.zeros_like(ranks)
    return position.mul_(2 * epsilon).add_(density - epsilon).reshape(delta.shape)


def _l1_rescale(job: TensorJob, index: int, keep: Keep, method: TaskVectorMethod) -> float:
    """|d|_1 / |kept d|_1 over the whole tensor (1 when either is ~0)."""
    before = after = 0.0
    for rows in job.chunks():
        delta = job.delta(index, rows)
        before += float(delta.abs().sum(dtype=torch.float64))
        after += float(method.mask(job, index, rows, delta, keep).abs_().sum(dtype=torch.float64))
    if before < _RESCALE_EPS or after < _RESCALE_EPS:
        return 1.0
    return before / after
