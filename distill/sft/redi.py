"""REDI, Reinforcement Distillation (arXiv 2505.24850): learn from the teacher's failed traces too.

`objective: redi` in the SFT config trains on preference shards (`distillery export WS --to redi`,
curate/preferences.py: columns `chosen` and `rejected`, each a conversation) with the loss, per pair

    L = -log pi(y_w | x) / |y_w|  +  alpha * log pi(y_l | x) / |y_l|

averaged over the pairs of an optimizer step: reference-free (no frozen model), each side's
log-probability normalised by its own supervised-token count, asymmetric (`alpha` < 1 pushes the
failed trace down less than it pulls the passing one up; the paper uses alpha = 0.8 and lr 1e-6
after an SFT stage).

Everything else is SFT's: the same chat-template rendering and assistant-only labels (data.py),
the same padding-free packing and attention (packing.py, attention.py). A pair is the packing
unit: its two sequences go into the same row as two documents of `cu_seqlens`, so they never
attend to each other. Each supervised token carries the weight 1/|y| of its own sequence and a
side; the row's forward returns the two weighted sums of token losses, and a step's loss is their
combination summed over rows and divided by the step's pair count (the trainer's `loss_units`).

Over-long pairs: each side follows `overlong` (drop or truncate at `seq_len`); a pair whose two
sides together exceed `batch_tokens` is dropped (set `batch_tokens` >= 2 x `seq_len` to keep all).

Logged per step beside `loss`: `chosen_logp` and `rejected_logp` (mean length-normalised
log-probability of each side) and `margin` (their difference); `val_` versions at each evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from distill.sft.config import SFTConfig
from distill.sft.data import (
    IGNORE_INDEX,
    Example,
    SFTDataError,
    TemplateError,
    _check_messages,
    encode_conversations,
    read_template,
    shard_files,
)
from distill.sft.packing import FitStats, PackedRow, best_fit_decreasing, fit_to_length, pack_row
from distill.sft.trainer import Dist, TokenLoss, TrainingData

Pair = tuple[Example, Example]  # (chosen, rejected)
SIDES = ("chosen", "rejected")


def read_pairs(files: Sequence[str | Path]) -> list[tuple[list[dict], list[dict]]]:
    """The (chosen, rejected) conversations of every row of `files`, validated (file and row named)."""
    import pyarrow.parquet as pq

    pairs = []
    for path in files:
        try:
            names = pq.read_schema(path).names
            table = pq.read_table(path, columns=list(SIDES)) if set(SIDES) <= set(names) else None
        except Exception as error:  # pyarrow raises several types for unreadable files
            raise SFTDataError(f"{path}: cannot read parquet ({error})") from error
        if table is None:
            raise SFTDataError(
                f"{path}: no 'chosen' and 'rejected' columns: objective redi trains on preference shards "
                "(distillery export WS --to redi)"
            )
        chosen, rejected = (table.column(side).to_pylist() for side in SIDES)
        for row, (c, r) in enumerate(zip(chosen, rejected, strict=True)):
            where = f"{path}:row {row}"
            pairs.append((_check_messages(c, f"{where} chosen"), _check_messages(r, f"{where} rejected")))
    return pairs


@dataclass
class PairRow(PackedRow):
    """A packed row of whole pairs, documents [chosen_1, rejected_1, chosen_2, ...]: each target
    token's weight is 1/|y| of its sequence (0 where unsupervised) and `chosen` marks the side."""

    weights: torch.Tensor  # (1, T) float
    chosen: torch.Tensor  # (1, T) float, 1.0 on chosen sequences

    @property
    def n_pairs(self) -> int:
        return len(self.lengths) // 2

    def to(self, device) -> PairRow:
        return PairRow(**{k: v.to(device) if torch.is_tensor(v) else v for k, v in vars(self).items()})


def pack_pairs(pairs: Sequence[Pair]) -> PairRow:
    """One row of pairs: SFT's packed row plus the per-token weights and sides of the REDI loss."""
    row = pack_row([side for pair in pairs for side in pair])
    weights = torch.zeros(row.targets.shape, dtype=torch.float32)
    chosen = torch.zeros(row.targets.shape, dtype=torch.float32)
    bounds = row.cu_seqlens.tolist()
    for n, (start, end) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        supervised = row.targets[0, start:end] != IGNORE_INDEX
        weights[0, start:end] = supervised.float() / max(1, int(supervised.sum()))
        chosen[0, start:end] = float(n % 2 == 0)
    return PairRow(**vars(row), weights=weights, chosen=chosen)


def _side_sums(head: nn.Module, hidden, labels, weights, chosen) -> torch.Tensor:
    """[sum over chosen tokens, sum over rejected tokens] of weight x token cross-entropy."""
    weighted = F.cross_entropy(head(hidden).float(), labels, reduction="none") * weights
    return torch.stack([(weighted * chosen).sum(), (weighted * (1 - chosen)).sum()])


class PairLoss(TokenLoss):
    """The REDI loss of a packed row of pairs, summed over its pairs (the trainer divides by the
    step's pair count). Also keeps the side sums of the rows it is asked to count, for metrics."""

    def __init__(self, lm: nn.Module, chunk_tokens: int = 8192, alpha: float = 0.8):
        super().__init__(lm, chunk_tokens)
        self.alpha = alpha
        self._sums = np.zeros(3)  # chosen, rejected (normalised NLL summed over pairs), pairs

    def forward(self, input_ids, position_ids, targets, cu_seqlens, max_len: int, weights, chosen):
        hidden = self.hidden_states(input_ids, position_ids, cu_seqlens, max_len)
        keep = targets[0] != IGNORE_INDEX
        parts = (hidden[0, keep], targets[0, keep], weights[0, keep], chosen[0, keep])
        head = self.lm.get_output_embeddings()
        starts = range(0, parts[1].numel(), self.chunk_tokens)
        if len(starts) <= 1:
            return _side_sums(head, *parts)
        chunks = [
            checkpoint(_side_sums, head, *(p[s : s + self.chunk_tokens] for p in parts), use_reentrant=False)
            for s in starts
        ]
        return torch.stack(chunks).sum(0)

    def row_loss(self, row: PairRow, counted: bool = True) -> torch.Tensor:
        sums = self(
            row.input_ids, row.position_ids, row.targets, row.cu_seqlens, row.max_len, row.weights, row.chosen
        )
        if counted:
            self._sums += [*sums.detach().double().tolist(), row.n_pairs]
        # -log pi(y_w)/|y_w| + alpha * log pi(y_l)/|y_l|, summed over the row's pairs
        return sums[0] - self.alpha * sums[1]

    def loss_units(self, rows: Sequence[PairRow]) -> int:
        return sum(r.n_pairs for r in rows)

    def pop_metrics(self, env: Dist, prefix: str = "") -> dict[str, float]:
        chosen, rejected, pairs = env.all_sum(self._sums.tolist())
        self._sums[:] = 0
        if not pairs:
            return {}
        logp_w, logp_l = -chosen / pairs, -rejected / pairs
        return {
            f"{prefix}chosen_logp": logp_w,
            f"{prefix}rejected_logp": logp_l,
            f"{prefix}margin": logp_w - logp_l,
        }


@dataclass
class PairData(TrainingData):
    """Tokenised pairs (`train`, `val`: lists of (chosen, rejected) Examples) and their rows."""

    def fingerprint(self) -> dict:
        tokens = sum(len(c) + len(r) for c, r in self.train)
        return {"pairs": len(self.train), "rows": len(self.bins), "tokens": int(tokens)}

    def row(self, index: int) -> PairRow:
        return pack_pairs([self.train[i] for i in self.bins[index]])

    def val_rows(self, batch_tokens: int) -> list[PairRow]:
        bins = best_fit_decreasing([len(c) + len(r) for c, r in self.val], batch_tokens)
        return [pack_pairs([self.val[i] for i in b]) for b in bins]


def fit_pairs(pairs: Sequence[Pair], cfg: SFTConfig) -> tuple[list[Pair], FitStats]:
    """The over-long policy on each side; a pair that no longer fits one row is dropped."""
    kept, dropped, truncated = [], 0, 0
    for pair in pairs:
        sides, stats = fit_to_length(pair, cfg.seq_len, cfg.overlong)
        if len(sides) < 2 or sum(map(len, sides)) > cfg.batch_tokens:
            dropped += 1
            continue
        truncated += bool(stats.truncated)
        kept.append((sides[0], sides[1]))
    return kept, FitStats(len(kept), dropped, truncated)


def load_pair_data(cfg: SFTConfig, data_dir: str | Path, tokenizer, stop_ids: set[int]) -> PairData:
    """The preference shards of `data_dir` ({train,val}-*.parquet), tokenised as SFT tokenises."""
    template = read_template(cfg.chat_template)

    def split(name: str) -> tuple[list[Pair], FitStats]:
        pairs: list[Pair] = []
        for path in shard_files(data_dir, name):
            conversations = read_pairs([path])
            try:
                encoded = [
                    encode_conversations(tokenizer, [p[k] for p in conversations], stop_ids, template)
                    for k in (0, 1)
                ]
            except TemplateError as error:
                raise TemplateError(f"{path}: {error}") from error
            pairs += list(zip(*encoded, strict=True))
        return fit_pairs(pairs, cfg)

    train, fit = split("train")
    if not train:
        raise SFTDataError(
            f"{data_dir}: no training pair (no train shards of preference pairs, or none fits "
            f"seq_len={cfg.seq_len} and batch_tokens={cfg.batch_tokens})"
        )
    val, _ = split("val")
    bins = best_fit_decreasing([len(c) + len(r) for c, r in train], cfg.batch_tokens)
    return PairData(train, val, fit, bins)


@torch.no_grad()
def pair_logps(lm: nn.Module, pairs: Sequence[Pair]) -> list[tuple[float, float]]:
    """(log pi(y_w)/|y_w|, log pi(y_l)/|y_l|) of each pair under `lm`, each sequence on its own (for
    checks and benchmarks: the margin is the first minus the second)."""
    out = []
    for pair in pairs:
        logps = []
        for example in pair:
            ids = torch.tensor(example.input_ids, dtype=torch.long)[None]
            labels = torch.tensor(example.labels[1:], dtype=torch.long)
            logits = lm(input_ids=ids).logits[0, :-1].float()
            keep = labels != IGNORE_INDEX
            logps.append(-F.cross_entropy(logits[keep], labels[keep], reduction="mean").item())
        out.append((logps[0], logps[1]))
    return out
