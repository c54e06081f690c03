"""The task-vector family shared by task_arithmetic, ties, dare_ties and dare_linear.

Each non-base model i gives a task vector d_i = x_i - base. Optionally it is sparsified to a
fraction `density` of its entries (by magnitude for TIES, at random for DARE) and rescaled; then

    w_i d_i                       weighted
    m_i = [sign(w_i d_i) == s]    with s = sign(sum_i w_i d_i) (+1 on ties): sign consensus (TIES)
    merged = base + lambda * sum_i w_i d_i m_i / D

where m_i = 1 without consensus, and D = sum_i w_i m_i (elementwise, 1 where it is 0) when
`normalize` is true, else 1. The modules of the four methods say which steps they use.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch

from .base import Method, TensorJob, broadcast, weights_of

# Tensors up to this size get an exact kthvalue directly; larger ones are bracketed first.
_DIRECT_SELECT = 1 << 22
_SAMPLE = 1 << 16
_MARGIN = 0.01
_RESCALE_EPS = 1e-7


class TaskVectorMethod(Method):
    needs_base = True
    min_inputs = 2
    sparsify: ClassVar[str | None] = None  # None, "magnitude" or "random"
    consensus: ClassVar[bool] = False
    shared_params = {"lambda": 1.0, "normalize": False, "rescale": False, "int8_mask": False}
    model_params = {"weight": 1.0, "density": 1.0}

    def prepare(self, job: TensorJob) -> dict[int, tuple[float | None, float]]:
        """Per non-base model: (magnitude threshold or None, rescale factor)."""
        state = {}
        for index in job.others:
            density = job.model_params[index]["density"]
            if self.sparsify is None or density >= 1:
                state[index] = (None, 1.0)
                continue
            threshold = _magnitude_threshold(job, index, density) if self.sparsify == "magnitude" else None
            scale = 1.0
            if job.params["rescale"]:
                scale = _l1_rescale(job, index, threshold, density, self)
            state[index] = (threshold, scale)
        return state

    def sparse_delta(self, job: TensorJob, index: int, rows: slice, state: Any) -> torch.Tensor:
        """The (sparsified, rescaled) task vector of input `index` on `rows`."""
        delta = job.delta(index, rows)
        threshold, scale = state[index]
        density = job.model_params[index]["density"]
        if self.sparsify is None or density >= 1:
            return delta
        if self.sparsify == "magnitude":
            delta = delta * (delta.abs() >= threshold)
        else:
            delta = delta * _random_keep(job, index, rows, delta.shape, density)
        return delta * scale if scale != 1.0 else delta

    def combine(self, job: TensorJob, rows: slice, state: Any) -> torch.Tensor:
        base = job.rows(job.base, rows)
        others = job.others
        weights = weights_of(job, others)
        deltas = torch.stack([self.sparse_delta(job, i, rows, state) for i in others])
        column = broadcast(weights, deltas)
        deltas.mul_(column)
        if self.consensus:
            majority = torch.where(deltas.sum(dim=0) >= 0, 1.0, -1.0).to(deltas.dtype)
            agree = deltas.sign() == majority
            mixed = (deltas * agree).sum(dim=0)
            divisor = (column * agree).sum(dim=0)
            divisor[divisor == 0] = 1
        else:
            mixed = deltas.sum(dim=0)
            total = float(weights.sum())
            divisor = 1.0 if abs(total) < 1e-8 else total
        if job.params["normalize"]:
            mixed = mixed / divisor
        if job.params["lambda"] != 1:
            mixed = mixed * job.params["lambda"]
        return base + mixed


def _random_keep(job: TensorJob, index: int, rows: slice, shape: torch.Size, density: float) -> torch.Tensor:
    # Seeded per (tensor, model, first row): the same mask in prepare and combine, whatever the order.
    generator = job.generator("dare", index, rows.start)
    return torch.rand(shape, generator=generator, dtype=torch.float32) < density


def _l1_rescale(job: TensorJob, index: int, threshold: float | None, density: float,
                method: TaskVectorMethod) -> float:
    """|d|_1 / |kept d|_1 over the whole tensor (1 when either is ~0)."""
    before = after = 0.0
    for rows in job.chunks():
        delta = job.delta(index, rows)
        before += float(delta.abs().sum(dtype=torch.float64))
        if method.sparsify == "magnitude":
            kept = delta * (delta.abs() >= threshold)
        else:
            kept = delta * _random_keep(job, index, rows, delta.shape, density)
        after += float(kept.abs().sum(dtype=torch.float64))
    if before < _RESCALE_EPS or after < _RESCALE_EPS:
        return 1.0
    return before / after


def _magnitude_threshold(job: TensorJob, index: int, density: float) -> float:
    """The k-th largest |d| with k = max(1, int(density * numel)): keeping |d| >= it keeps k entries.

    Entries tied with the k-th largest are all kept (mergekit breaks such ties arbitrarily).
    """
    n = job.numel
    if density <= 0 or n == 0:
        return math.inf
    k = max(1, int(density * n))
    if n > _DIRECT_SELECT:
        found = _bracketed_kth_largest(job, index, k)
        if found is not None:
            return found
    values = torch.cat([job.delta(index, rows).abs().reshape(-1) for rows in job.chunks()])
    return float(torch.kthvalue(values, n - k + 1).values)


def _bracketed_kth_largest(job: TensorJob, index: int, k: int) -> float | None:
    """Exact k-th largest |d| of a large tensor without sorting it.

    A seeded sample brackets the answer in [low, high]; one pass counts the entries above `high`
    and gathers those inside the bracket, whose own order statistic is then the answer. Returns
    None in the (unlikely) case that the bracket missed it.
    """
    n = job.numel
    picks = torch.randint(n, (_SAMPLE,), generator=job.generator("bracket", index))
    flat = job.tensors[index].reshape(-1)[picks].to(job.compute_dtype)
    flat_base = job.tensors[job.base].reshape(-1)[picks].to(job.compute_dtype)
    sample = (flat - flat_base).abs().sort().values
    position = (n - k) / n  # fraction of entries below the answer
    low = sample[max(0, math.floor((position - _MARGIN) * _SAMPLE))]
    high = sample[min(_SAMPLE - 1, math.ceil((position + _MARGIN) * _SAMPLE))]
    above = 0
    inside = []
    for rows in job.chunks():
        magnitude = job.delta(index, rows).abs()
        above += int((magnitude > high).sum())
        inside.append(magnitude[(magnitude >= low) & (magnitude <= high)])
    band = torch.cat(inside)
    rank = k - above  # the answer is the rank-th largest inside the bracket
    if not 1 <= rank <= band.numel():
        return None
    return float(torch.kthvalue(band, band.numel() - rank + 1).values)
