"""LongAttn: score documents by the long-range dependencies one attention layer sees in them.

For a window of L tokens and a distance k (default L/4), let m_h(i) be the attention mass that
token i puts, in head h of the chosen layer, on tokens at least k positions back (j <= i - k).
Over the tokens i >= k (the only ones that can reach that far):

    DS  = mean over heads and tokens of m_h(i)           dependency strength
    DU  = - mean over heads of Var_i m_h(i)              dependency uniformity (population variance)
    LDS = norm(DS) + alpha * norm(DU)                    norm = z-score (paper) or min-max (released code)

Documents longer than one window are scored on up to three windows (front; front and back; or
front, middle and back) and DS, DU are the means over those windows. The normalisation and the
top-fraction selection run within each category (the pool the paper selects from: ArXiv, books, code).

Differences from the paper (Wu et al., 2025) and from its released code, all deliberate:
- Normalisation: the paper uses z-scores, the released code min-max scaling (and subtracts
  0.5 x the scaled variance, which ranks exactly like adding 0.5 x the scaled DU). Both are here
  (`normalize`), z-score by default.
- Model: the released code loads Llama-3.1-70B in fp16 with its config cut to one layer (layer 0)
  and RoPE theta overridden. Here any local causal LM works, at any layer (the layers after it are
  not loaded), in fp32 unless `dtype` says otherwise.
- Statistics: the released code divides each head's far mass by all L tokens (the first k, which
  cannot reach back k, count as zeros) and takes the variance over all L x L entries of the masked
  attention matrix. Here DS and DU follow the paper's description: per-token masses, over the
  tokens that can reach back k, then averaged over heads.
- Windows: the released code drops documents shorter than L and cuts longer ones into windows
  from both ends inwards, each scored as a separate sample. Here a document keeps one score: the
  mean over at most three windows (front, middle, back); shorter documents can be admitted with
  `min_tokens`.
- Memory: the released code materialises each head's L x L attention; here it is computed in query
  chunks (curate.longctx.attention), so memory grows with heads x chunk x L.
- A BOS token, when the tokenizer has one, starts every window (the released code prepends it too).
"""

from __future__ import annotations

import hashlib
import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from curate.errors import CurateError

if TYPE_CHECKING:
    import torch

NORMALIZERS = ("zscore", "minmax")


@dataclass(frozen=True)
class DocScore:
    """DS and DU of one document (means over its windows); None when it was too short to score."""

    tokens: int
    windows: int
    ds: float | None
    du: float | None
    scored_tokens: int = 0  # tokens run through the model (windows may overlap)


def window_starts(n_tokens: int, window: int) -> list[int]:
    """Start offsets of the windows scored for a document of n tokens: one window when it fits,
    front and back up to two windows' length, front, middle and back beyond."""
    if n_tokens <= window:
        return [0]
    if n_tokens <= 2 * window:
        return [0, n_tokens - window]
    return [0, (n_tokens - window) // 2, n_tokens - window]


def dependency_stats(mass: torch.Tensor, distance: int) -> tuple[float, float]:
    """(DS, DU) from a (heads, n) far-attention-mass tensor, over the tokens i >= distance."""
    reach = mass[:, distance:]
    return float(reach.mean()), -float(reach.var(dim=1, unbiased=False).mean())


def normalized(values: Sequence[float], method: str) -> list[float]:
    """z-scores (population std) or min-max scaling; a constant column maps to zeros."""
    if method not in NORMALIZERS:
        raise CurateError(f"unknown normalisation {method!r} (known: {', '.join(NORMALIZERS)})")
    if not values:
        return []
    if method == "zscore":
        mean, std = statistics.fmean(values), statistics.pstdev(values)
        return [(v - mean) / std if std > 0 else 0.0 for v in values]
    low, high = min(values), max(values)
    return [(v - low) / (high - low) if high > low else 0.0 for v in values]


def keep_count(n: int, fraction: float) -> int:
    """How many of n documents the top `fraction` keeps (rounded up, so no category is emptied)."""
    if not 0.0 <= fraction <= 1.0:
        raise CurateError(f"keep_fraction must be within [0, 1], got {fraction}")
    return min(n, math.ceil(fraction * n - 1e-9))


@dataclass(frozen=True)
class Ranked:
    """A scored document's combined score, its rank in its category (1 = best) and the decision."""

    score: float
    rank: int
    of: int
    keep: bool


def rank_documents(
    scores: Sequence[DocScore | None],
    categories: Sequence[str | None],
    alpha: float = 0.5,
    method: str = "zscore",
    keep_fraction: float = 1.0,
) -> list[Ranked | None]:
    """LDS per document, normalised within its category, and the per-category top-fraction decision.
    Unscored documents (None, or ds None) get None. Ties keep input order."""
    groups: dict[str | None, list[int]] = defaultdict(list)
    for index, score in enumerate(scores):
        if score is not None and score.ds is not None:
            groups[categories[index]].append(index)
    ranked: list[Ranked | None] = [None] * len(scores)
    for members in groups.values():
        ds = normalized([scores[i].ds for i in members], method)  # type: ignore[union-attr,misc]
        du = normalized([scores[i].du for i in members], method)  # type: ignore[union-attr,misc]
        lds = {i: d + alpha * u for i, d, u in zip(members, ds, du, strict=True)}
        order = sorted(members, key=lambda i: (-lds[i], i))
        kept = keep_count(len(members), keep_fraction)
        for rank, i in enumerate(order, start=1):
            ranked[i] = Ranked(lds[i], rank, len(members), rank <= kept)
    return ranked


def model_checksum(model_dir: str | Path) -> str:
    """sha256 over a model folder's file names and bytes (for stage fingerprints)."""
    root = Path(model_dir)
    if not root.is_dir():
        raise CurateError(f"{model_dir}: model folder not found")
    digest = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(root)).encode() + b"\x00")
        with open(file, "rb") as handle:
            while block := handle.read(8 << 20):
                digest.update(block)
    return digest.hexdigest()


def load_tokenizer(model_dir: str | Path) -> Any:
    """The model's tokenizer. A `tokenizer.json` is loaded as it is: it is the exact pipeline the model
    was trained with, while transformers 5's AutoTokenizer may rebuild the model type's own tokenizer
    class from the vocabulary alone (and so mis-tokenize a custom one)."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    try:
        if (Path(model_dir) / "tokenizer.json").exists():
            return PreTrainedTokenizerFast.from_pretrained(model_dir)
        return AutoTokenizer.from_pretrained(model_dir)
    except (OSError, ValueError) as error:
        raise CurateError(f"{model_dir}: cannot load the tokenizer: {error}") from error


class LongAttnScorer:
    """DS and DU of documents under one layer of a local causal LM."""

    def __init__(
        self,
        model_dir: str | Path,
        window: int = 32768,
        k: int | None = None,
        layer: int = 0,
        chunk: int = 512,
        min_tokens: int | None = None,
        dtype: str = "float32",
        device: str = "cpu",
        bos: bool = True,
    ):
        from curate.longctx.attention import load_layer_model

        self.window, self.chunk = int(window), int(chunk)
        self.distance = int(k) if k is not None else self.window // 4
        if not 0 < self.distance < self.window:
            raise CurateError(f"k must be within (0, window={self.window}), got {self.distance}")
        if self.chunk < 1:
            raise CurateError(f"chunk must be positive, got {self.chunk}")
        self.tokenizer = load_tokenizer(model_dir)
        self.bos = self.tokenizer.bos_token_id if bos else None
        self.body = self.window - (self.bos is not None)  # document tokens per window
        # by default only documents that fill a whole window are scored, as in the paper
        self.min_tokens = int(min_tokens) if min_tokens is not None else self.body
        self.lm = load_layer_model(model_dir, layer, dtype=dtype, device=device)

    def tokenize(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def score_ids(self, ids: Sequence[int]) -> DocScore:
        """Score a tokenized document (without BOS); ds/du are None below `min_tokens`."""
        import torch

        from curate.longctx.attention import far_attention_mass, layer_queries_keys

        n = len(ids)
        if n < max(self.min_tokens, self.distance + 1):
            return DocScore(n, 0, None, None)
        stats, scored = [], 0
        for start in window_starts(n, self.body):
            window = ([self.bos] if self.bos is not None else []) + list(ids[start : start + self.body])
            query, key = layer_queries_keys(self.lm, torch.tensor(window))
            mass = far_attention_mass(query, key, self.distance, self.chunk)
            stats.append(dependency_stats(mass, self.distance))
            scored += len(window)
        ds, du = statistics.fmean(s[0] for s in stats), statistics.fmean(s[1] for s in stats)
        return DocScore(n, len(stats), ds, du, scored)

    def score(self, text: str | None) -> DocScore:
        return self.score_ids(self.tokenize(text) if text else [])
