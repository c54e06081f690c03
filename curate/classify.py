"""The domain stage's learned option: a hashed word n-gram logistic regression, trained with numpy
on the rows whose rule label is confident (curate.stages.domain, `method: learned`)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import polars as pl

_TOKEN = r"\\[a-z]+|[a-z]+|\d+|[^\sa-z\d]"
_HASH_SEED = 20250101  # Polars' hash is stable within a Polars version: enough for a model trained per run


class HashedNgramClassifier:
    """Multinomial logistic regression over hashed word unigrams and bigrams, trained with numpy.

    Features are log counts of word unigrams and bigrams hashed into `dim` buckets, L2-normalised.
    Training is mini-batch gradient descent with class-balanced weights and a seeded shuffle.
    """

    def __init__(
        self, classes: list[str], dim: int = 1 << 18, epochs: int = 8, lr: float = 4.0, seed: int = 0
    ):
        self.classes, self.dim, self.epochs, self.lr, self.seed = list(classes), dim, epochs, lr, seed
        self.weights = np.zeros((dim, len(classes)))
        self.bias = np.zeros(len(classes))

    def features(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """CSR arrays (indptr, indices, values) of the hashed features of `texts`, computed in Polars."""
        frame = pl.DataFrame({"text": texts}, schema={"text": pl.String}).with_row_index("row")
        words = (
            frame.select("row", pl.col("text").str.to_lowercase().str.extract_all(_TOKEN).alias("gram"))
            .explode("gram")
            .drop_nulls("gram")
        )
        pairs = words.select(
            "row", (pl.col("gram") + " " + pl.col("gram").shift(-1).over("row")).alias("gram")
        )
        counts = (
            pl.concat([words, pairs.drop_nulls("gram")])
            .group_by("row", (pl.col("gram").hash(_HASH_SEED) % self.dim).cast(pl.Int64).alias("bucket"))
            .len()
            .with_columns(pl.col("len").cast(pl.Float64).log1p().alias("value"))
            .with_columns(pl.col("value") / (pl.col("value") ** 2).sum().sqrt().over("row"))
            .sort("row")
        )
        per_row = np.bincount(counts["row"].to_numpy(), minlength=len(texts))
        indptr = np.concatenate([[0], np.cumsum(per_row)])
        return indptr, counts["bucket"].to_numpy(), counts["value"].to_numpy()

    def _logits(self, indptr: np.ndarray, indices: np.ndarray, values: np.ndarray) -> np.ndarray:
        rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
        contrib = self.weights[indices] * values[:, None]
        logits = np.stack(
            [np.bincount(rows, contrib[:, k], len(indptr) - 1) for k in range(len(self.classes))], 1
        )
        return logits + self.bias

    def fit(self, texts: list[str], labels: list[str], batch_size: int = 32) -> HashedNgramClassifier:
        indptr, indices, values = self.features(texts)
        y = np.array([self.classes.index(label) for label in labels])
        counts = np.bincount(y, minlength=len(self.classes))
        class_weight = len(y) / (len(self.classes) * np.maximum(counts, 1))
        rng = np.random.default_rng(self.seed)
        for epoch in range(self.epochs):
            lr = self.lr / np.sqrt(1 + epoch)
            for batch in _chunks(rng.permutation(len(y)), batch_size):
                sub_ptr, sub_idx, sub_val = _take_rows(indptr, indices, values, batch)
                error = _softmax(self._logits(sub_ptr, sub_idx, sub_val))
                error[np.arange(len(batch)), y[batch]] -= 1.0  # d(cross-entropy)/d(logits)
                error *= class_weight[y[batch]][:, None] / len(batch)
                rows = np.repeat(np.arange(len(batch)), np.diff(sub_ptr))
                # Gradient only for the buckets this batch touches (the weight matrix is large).
                buckets, slot = np.unique(sub_idx, return_inverse=True)
                for k in range(len(self.classes)):
                    self.weights[buckets, k] -= lr * np.bincount(slot, error[rows, k] * sub_val, len(buckets))
                self.bias -= lr * error.sum(0)
        return self

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, len(self.classes)))
        return _softmax(self._logits(*self.features(texts)))

    def predict(self, texts: list[str]) -> list[str]:
        return [self.classes[i] for i in self.predict_proba(texts).argmax(1)]


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(1, keepdims=True))
    return shifted / shifted.sum(1, keepdims=True)


def _chunks(order: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(order), size):
        yield order[start : start + size]


def _take_rows(indptr: np.ndarray, indices: np.ndarray, values: np.ndarray, rows: np.ndarray) -> tuple:
    """The CSR sub-matrix of `rows`."""
    starts, ends = indptr[rows], indptr[rows + 1]
    picked = (
        np.concatenate([np.arange(s, e) for s, e in zip(starts, ends, strict=True)])
        if len(rows)
        else np.array([], int)
    )
    return np.concatenate([[0], np.cumsum(ends - starts)]), indices[picked], values[picked]
