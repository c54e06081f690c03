"""sce: select, calculate, erase (Wan et al., 2024, "FuseChat").

With task vectors d_i = x_i - base of the non-base models:

1. Select (`select_topk` < 1): per entry, v = the variance of the d_i across models (population);
   keep the k = int(select_topk * count(v != 0)) entries of largest v in every d_i, zero the rest.
2. Calculate: one weight per model from its (selected) task vector's energy,
       w_i = mean(d_i^2) / sum_j mean(d_j^2)     (1 / N each when the sum is below 1e-6).
3. Erase: s = sign(sum_i d_i) (+1 where it is 0); entries whose sign differs from s are dropped:
       merged = base + sum_i w_i d_i [sign(d_i) == s] / max(sum_i w_i [sign(d_i) == s], 1e-6)

Parameters: global `select_topk` (1.0: keep every entry). Needs a base. Entries tied with the k-th
largest variance are all kept.
"""

from __future__ import annotations

from typing import Any

import torch

from ._select import kth_largest, score_rows
from .base import Method, TensorJob


class Sce(Method):
    name = "sce"
    needs_base = True
    min_inputs = 2
    shared_params = {"select_topk": 1.0, "int8_mask": False}

    def prepare(self, job: TensorJob) -> tuple[torch.Tensor | None, list[float]]:
        """(the selection mask, or None to keep all; the model weights).

        The mask (one byte per entry) is kept from the energy pass, so `combine` does not
        recompute the variance of every entry a fourth time.
        """
        threshold = None
        topk = job.params["select_topk"]
        if topk < 1:
            score = self._variance(job)
            nonzero = sum(int(torch.count_nonzero(score_rows(job, score, rows))) for rows in job.chunks())
            k = int(nonzero * topk) if topk > 0 else 0
            threshold = kth_largest(job, {"v": (score, k)})["v"] if k > 0 else float("inf")
        mask = None if threshold is None else torch.empty(job.shape, dtype=torch.bool)
        energy = [0.0] * len(job.others)
        for rows in job.chunks():
            deltas = [job.delta(i, rows) for i in job.others]
            if mask is not None:
                keep = torch.var(torch.stack(deltas), dim=0, unbiased=False) >= threshold
                _rows_of(mask, rows).copy_(keep)
                deltas = [delta.mul_(keep) for delta in deltas]
            for slot, delta in enumerate(deltas):
                energy[slot] += float(delta.square().sum(dtype=torch.float64))
        energy = [value / job.numel for value in energy]
        total = sum(energy)
        if abs(total) < 1e-6:
            return mask, [1 / len(energy)] * len(energy)
        return mask, [value / total for value in energy]

    @staticmethod
    def _variance(job: TensorJob):
        others, base = job.others, job.base
        return lambda values: torch.var(
            torch.stack([values[i] - values[base] for i in others]), dim=0, unbiased=False
        )

    def combine(self, job: TensorJob, rows: slice, state: Any) -> torch.Tensor:
        mask, weights = state
        deltas = [job.delta(i, rows) for i in job.others]
        if mask is not None:
            deltas = [delta.mul_(_rows_of(mask, rows)) for delta in deltas]
        elected = sum(deltas[1:], deltas[0].clone()).sign_().add_(0.5).sign_()  # -1, 0, +1 -> -1, +1, +1
        merged = torch.zeros_like(elected)
        divisor = torch.zeros_like(elected)
        for delta, weight in zip(deltas, weights, strict=True):
            agreeing = delta.sign() == elected
            merged.add_(delta.mul_(agreeing), alpha=weight)
            divisor.add_(agreeing, alpha=weight)
        return merged.div_(divisor.clamp_(min=1e-6)).add_(job.rows(job.base, rows))


def _rows_of(tensor: torch.Tensor, rows: slice) -> torch.Tensor:
    return tensor if tensor.dim() == 0 else tensor[rows]
