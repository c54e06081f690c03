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

from .base import Method, TensorJob

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
        sparse = [i for i in job.others if self.sparsify is not None and job.model_params[i]["density"] < 1]
        thresholds: dict[int, float | None] = dict.fromkeys(job.others)
        if self.sparsify == "magnitude":
            thresholds.update(_magnitude_thresholds(job, sparse))
        state = {}
        for index in job.others:
            scale = 1.0
            if index in sparse and job.params["rescale"]:
                scale = _l1_rescale(job, index, thresholds[index], self)
            state[index] = (thresholds[index], scale)
        return state

    def sparse_delta(self, job: TensorJob, index: int, rows: slice, base: torch.Tensor, state: Any) -> torch.Tensor:
        """The (sparsified, rescaled) task vector of input `index` on `rows`, in a fresh tensor."""
        delta = torch.sub(job.raw(index, rows), base)
        threshold, scale = state[index]
        density = job.model_params[index]["density"]
        if self.sparsify is None or density >= 1:
            return delta
        if self.sparsify == "magnitude":
            delta = _keep_at_least(delta, threshold)
        else:
            delta.mul_(_random_keep(job, index, rows, delta.shape, density))
        return delta.mul_(scale) if scale != 1.0 else delta

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
    below = torch.nextafter(torch.tensor(threshold, dtype=delta.dtype), torch.tensor(0.0, dtype=delta.dtype))
    return torch.nn.functional.hardshrink(delta, float(below))


def _random_keep(job: TensorJob, index: int, rows: slice, shape: torch.Size, density: float) -> torch.Tensor:
    # Seeded per (tensor, model, first row): the same mask in prepare and combine, whatever the order.
    generator = job.generator("dare", index, rows.start)
    return torch.rand(shape, generator=generator, dtype=torch.float32) < density


def _l1_rescale(job: TensorJob, index: int, threshold: float | None, method: TaskVectorMethod) -> float:
    """|d|_1 / |kept d|_1 over the whole tensor (1 when either is ~0)."""
    density = job.model_params[index]["density"]
    before = after = 0.0
    for rows in job.chunks():
        magnitude = job.delta(index, rows).abs_()
        before += float(magnitude.sum(dtype=torch.float64))
        if method.sparsify == "magnitude":
            magnitude = _keep_at_least(magnitude, threshold)
        else:
            magnitude.mul_(_random_keep(job, index, rows, magnitude.shape, density))
        after += float(magnitude.sum(dtype=torch.float64))
    if before < _RESCALE_EPS or after < _RESCALE_EPS:
        return 1.0
    return before / after


def _magnitude_thresholds(job: TensorJob, indices: list[int]) -> dict[int, float]:
    """Per model, the k-th largest |d| with k = max(1, int(density * numel)); keeping |d| >= it keeps k.

    Entries tied with the k-th largest are all kept (mergekit breaks such ties arbitrarily).
    Large tensors are bracketed first (one pass for all models, see _bracket); the rest, and any
    model whose bracket missed, get an exact kthvalue over all of |d|.
    """
    n = job.numel
    ranks = {i: max(1, int(job.model_params[i]["density"] * n)) for i in indices if job.model_params[i]["density"] > 0}
    found = {i: math.inf for i in indices if i not in ranks}  # density 0 keeps nothing
    if n > _DIRECT_SELECT and ranks:
        found.update(_bracket(job, ranks))
    for index, k in ranks.items():
        if index not in found:
            values = torch.cat([job.delta(index, rows).abs_().reshape(-1) for rows in job.chunks()])
            found[index] = float(torch.kthvalue(values, n - k + 1).values)
    return found


def _bracket(job: TensorJob, ranks: dict[int, int]) -> dict[int, float]:
    """Exact k-th largest |d| of a large tensor without sorting it.

    A seeded sample brackets each answer in [low, high]; one pass over the tensor counts the
    entries above `high` and gathers those inside the bracket, whose own order statistic is then
    the answer. Models whose bracket missed (unlikely) are left out of the result.
    """
    n = job.numel
    picks = torch.randint(n, (_SAMPLE,), generator=job.generator("bracket"))
    sample_base = job.tensors[job.base].reshape(-1)[picks].to(job.compute_dtype)
    bounds = {}
    for index, k in ranks.items():
        sample = (job.tensors[index].reshape(-1)[picks].to(job.compute_dtype) - sample_base).abs_().sort().values
        position = (n - k) / n  # fraction of entries below the answer
        low = float(sample[max(0, math.floor((position - _MARGIN) * _SAMPLE))])
        high = float(sample[min(_SAMPLE - 1, math.ceil((position + _MARGIN) * _SAMPLE))])
        bounds[index] = (low, high)
    # Bracket entries go into buffers allocated up front: many small pieces kept across the loop
    # would fragment the heap between the large per-chunk temporaries and grow it by gigabytes.
    capacity = int(3 * _MARGIN * n) + 4096  # a bracket holds about 2 * _MARGIN of the entries
    bands = {index: torch.empty(capacity, dtype=job.compute_dtype) for index in ranks}
    filled = dict.fromkeys(ranks, 0)
    above = dict.fromkeys(ranks, 0)
    for rows in job.chunks():
        base = job.rows(job.base, rows)
        for index, (low, high) in bounds.items():
            magnitude = torch.sub(job.raw(index, rows), base).abs_()
            above[index] += int((magnitude > high).sum())
            piece = magnitude[(magnitude >= low) & (magnitude <= high)]
            end = filled[index] + piece.numel()
            if end <= capacity:
                bands[index][filled[index]:end] = piece
            filled[index] = end  # past capacity the bracket is too wide to use: a miss
    found = {}
    for index, k in ranks.items():
        rank = k - above[index]  # the answer is the rank-th largest inside the bracket
        if filled[index] <= capacity and 1 <= rank <= filled[index]:
            band = bands[index][: filled[index]]
            found[index] = float(torch.kthvalue(band, filled[index] - rank + 1).values)
    return found
