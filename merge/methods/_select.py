"""Exact order statistics of an elementwise score over a whole tensor, read chunk by chunk.

A score is a function of the inputs' values at the same positions (|x_i - base| for TIES and
breadcrumbs, the variance across task vectors for SCE). `kth_largest` finds, for several
(score, k) requests at once, the k-th largest score value without holding the whole score:
small tensors are scored whole and handed to kthvalue; large ones are bracketed from a seeded
sample, one pass counts the entries above each bracket and gathers those inside it, and the
answer is an order statistic of that band. A request whose bracket missed (unlikely) falls back
to the whole-tensor kthvalue.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence

import torch

from .base import TensorJob

# A score sees every input's values (in the compute dtype) at some positions and scores each one.
Score = Callable[[Sequence[torch.Tensor]], torch.Tensor]

# Tensors up to this size get an exact kthvalue directly; larger ones are bracketed first.
DIRECT_SELECT = 1 << 22
_SAMPLE = 1 << 16
_MARGIN = 0.01


def score_rows(job: TensorJob, score: Score, rows: slice) -> torch.Tensor:
    """The score of every entry of `rows`."""
    return score([job.rows(i, rows) for i in range(len(job.tensors))])


def kth_largest(job: TensorJob, requests: dict[Hashable, tuple[Score, int]]) -> dict[Hashable, float]:
    """For each request (score, k) with 1 <= k <= numel, the k-th largest score value."""
    found: dict[Hashable, float] = {}
    if job.numel > DIRECT_SELECT and requests:
        found.update(_bracket(job, requests))
    for key, (score, k) in requests.items():
        if key not in found:
            values = torch.cat([score_rows(job, score, rows).reshape(-1) for rows in job.chunks()])
            found[key] = float(torch.kthvalue(values, job.numel - k + 1).values)
    return found


def _bracket(job: TensorJob, requests: dict[Hashable, tuple[Score, int]]) -> dict[Hashable, float]:
    n = job.numel
    picks = torch.randint(n, (_SAMPLE,), generator=job.generator("bracket"))
    sampled = [t.reshape(-1)[picks].to(job.compute_dtype) for t in job.tensors]
    bounds = {}
    for key, (score, k) in requests.items():
        sample = score(sampled).sort().values
        position = (n - k) / n  # fraction of entries below the answer
        # Near either end the sample cannot bound the answer: leave that side of the bracket open.
        below, beyond = position - _MARGIN, position + _MARGIN
        low = -math.inf if below <= 0 else float(sample[math.floor(below * _SAMPLE)])
        high = math.inf if beyond >= 1 else float(sample[min(_SAMPLE - 1, math.ceil(beyond * _SAMPLE))])
        bounds[key] = (low, high)
    # Entries strictly inside a bracket go into buffers allocated up front (many small pieces kept
    # across the loop would fragment the heap between the large per-chunk temporaries and grow it
    # by gigabytes); entries equal to either end are only counted, so values repeated a great many
    # times (bfloat16 task vectors take a few dozen distinct magnitudes) do not overflow the band.
    capacity = int(3 * _MARGIN * n) + 4096  # a bracket holds about 2 * _MARGIN of the entries
    bands = {key: torch.empty(capacity, dtype=job.compute_dtype) for key in requests}
    filled = dict.fromkeys(requests, 0)
    above = dict.fromkeys(requests, 0)
    at_high = dict.fromkeys(requests, 0)
    at_low = dict.fromkeys(requests, 0)
    for rows in job.chunks():
        for key, (low, high) in bounds.items():
            values = score_rows(job, requests[key][0], rows)
            above[key] += int((values > high).sum())
            at_high[key] += int((values == high).sum())
            if low < high:
                at_low[key] += int((values == low).sum())
            piece = values[(values > low) & (values < high)]
            end = filled[key] + piece.numel()
            if end <= capacity:
                bands[key][filled[key] : end] = piece.to(job.compute_dtype)
            filled[key] = end  # past capacity the bracket is too wide to use: a miss
    found = {}
    for key, (_, k) in requests.items():
        low, high = bounds[key]
        rank = k - above[key]  # the answer's rank from the top, counting from the bracket's top end
        if rank < 1 or filled[key] > capacity:
            continue
        if rank <= at_high[key]:
            found[key] = high
        elif rank <= at_high[key] + filled[key]:
            band = bands[key][: filled[key]]
            found[key] = float(torch.kthvalue(band, filled[key] - (rank - at_high[key]) + 1).values)
        elif rank <= at_high[key] + filled[key] + at_low[key]:
            found[key] = low
    return found


def magnitude_of(index: int, base: int) -> Score:
    """|x_index - x_base|, as a score."""
    return lambda values: torch.sub(values[index], values[base]).abs_()
