"""Padding-free packing: samples are concatenated into rows of at most `batch_tokens` tokens.

- Bins are filled by best-fit decreasing: longest sample first, each into the fullest row that
  still has room. Rows end up nearly full, so few micro-batches are needed per epoch.
- Each sample keeps its own positions (0, 1, ... restarting per sample, so RoPE sees what it would
  see alone) and its boundaries as `cu_seqlens`, which the packed attention uses to keep samples
  from attending to each other (see attention.py).
- Targets are shifted inside each sample: the last token of a sample never predicts the first
  token of the next one.
- Over-long samples (more than `seq_len` tokens): `overlong="drop"` (default) leaves them out and
  counts them; `"truncate"` keeps their first `seq_len` tokens, which loses the end of the answer
  and the EOS, so it is only for data whose tail does not matter. A truncated sample with no
  supervised token left is dropped too. Nothing is ever split across rows.
- Rows are not padded to `batch_tokens` (nothing to compute there); `padding_pct` reports the
  share of the token budget a step left unused.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from distill.sft.data import IGNORE_INDEX, Example


@dataclass
class FitStats:
    kept: int
    dropped: int
    truncated: int


def fit_to_length(examples: Sequence[Example], seq_len: int, overlong: str = "drop") -> tuple[list, FitStats]:
    """Apply the over-long policy; returns the kept examples and what happened to the others."""
    if overlong not in ("drop", "truncate"):
        raise ValueError(f"overlong must be 'drop' or 'truncate', not {overlong!r}")
    kept, dropped, truncated = [], 0, 0
    for example in examples:
        if len(example) > seq_len:
            if overlong == "drop":
                dropped += 1
                continue
            example = Example(example.input_ids[:seq_len], example.labels[:seq_len])
            if example.n_supervised == 0:
                dropped += 1
                continue
            truncated += 1
        kept.append(example)
    return kept, FitStats(len(kept), dropped, truncated)


def best_fit_decreasing(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Group item indices into bins of total length <= capacity, best-fit decreasing, deterministic."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    bins: list[list[int]] = []
    # Open bins as (free space, bin index), kept sorted so the tightest fit is one bisect away.
    free: list[tuple[int, int]] = []
    for i in order:
        size = lengths[i]
        if size > capacity:
            raise ValueError(f"item {i} has length {size} > capacity {capacity}")
        at = bisect.bisect_left(free, (size, -1))
        if at == len(free):
            bins.append([i])
            bisect.insort(free, (capacity - size, len(bins) - 1))
        else:
            space, b = free.pop(at)
            bins[b].append(i)
            if space > size:  # full bins leave the search list
                bisect.insort(free, (space - size, b))
    return bins


@dataclass
class PackedRow:
    """One micro-batch: several samples in a single row (batch dimension 1)."""

    input_ids: torch.Tensor  # (1, T) long
    position_ids: torch.Tensor  # (1, T) long, restarting at 0 for each sample
    targets: torch.Tensor  # (1, T) long, next-token label or IGNORE_INDEX
    cu_seqlens: torch.Tensor  # (n + 1,) int32, sample boundaries
    lengths: list[int]

    @property
    def n_tokens(self) -> int:
        return int(self.input_ids.shape[1])

    @property
    def n_supervised(self) -> int:
        return int((self.targets != IGNORE_INDEX).sum())

    @property
    def max_len(self) -> int:
        return max(self.lengths)

    def to(self, device) -> PackedRow:
        move = {"input_ids", "position_ids", "targets", "cu_seqlens"}
        return PackedRow(**{k: (v.to(device) if k in move else v) for k, v in vars(self).items()})


def pack_row(examples: Sequence[Example]) -> PackedRow:
    """Concatenate examples into one row with per-sample positions, shifted targets and cu_seqlens."""
    lengths = [len(e) for e in examples]
    ignore = np.array([IGNORE_INDEX], dtype=np.int32)
    # Token t predicts token t+1 of the same sample; the last token of a sample predicts nothing.
    targets = np.concatenate([part for e in examples for part in (e.labels[1:], ignore)])
    return PackedRow(
        input_ids=torch.from_numpy(np.concatenate([e.input_ids for e in examples])).long()[None],
        position_ids=torch.from_numpy(np.concatenate([np.arange(n) for n in lengths])).long()[None],
        targets=torch.from_numpy(targets).long()[None],
        cu_seqlens=torch.tensor(np.concatenate([[0], np.cumsum(lengths)]), dtype=torch.int32),
        lengths=lengths,
    )


def pack(examples: Sequence[Example], batch_tokens: int) -> list[list[int]]:
    """Example indices grouped into rows of at most `batch_tokens` tokens (best-fit decreasing).

    Rows are materialised with `pack_row` only when a step needs them, so memory holds the
    tokens once.
    """
    return best_fit_decreasing([len(e) for e in examples], batch_tokens)
