"""Shingles: the set of hashed n-grams of each text, built without a Python loop per shingle.

Texts are tokenised and their tokens hashed by Polars (Rust); the n-gram hashes are then combined
with numpy over the flat token array, and each text's set is the sorted unique run of its hashes.
A text shorter than n tokens gets one shingle made of all its tokens, so short problems still
compare. Hashes are 32-bit: 4 bytes a shingle, and at a few hundred shingles per text a
collision inside one comparison is negligible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from curate.text import TOKEN_PATTERN, WORD_PATTERN

SHINGLE_KINDS = ("token", "word", "char")
_TOKEN_SEED = 0x5EED
# Odd 64-bit multipliers, one per n-gram position (so "a b" and "b a" hash differently).
_POSITION_MULTIPLIERS = np.array(
    [
        0x9E3779B97F4A7C15,
        0xC2B2AE3D27D4EB4F,
        0x165667B19E3779F9,
        0xD6E8FEB86659FD93,
        0xFF51AFD7ED558CCD,
        0xC4CEB9FE1A85EC53,
        0x94D049BB133111EB,
        0xBF58476D1CE4E5B9,
        0x2545F4914F6CDD1D,
        0x27BB2EE687B0B0FD,
        0x9FB21C651E98DF25,
        0xA0761D6478BD642F,
        0xE7037ED1A0B428DB,
        0x8EBC6AF09C88C6E3,
        0x589965CC75374CC3,
        0x1D8E4E27C47D124F,
    ],
    dtype=np.uint64,
)
MAX_SHINGLE_SIZE = len(_POSITION_MULTIPLIERS)


@dataclass
class Shingles:
    """Shingle sets of n texts, flat: text i owns hashes[offsets[i]:offsets[i + 1]] (sorted, unique)."""

    offsets: np.ndarray  # int64, n + 1
    hashes: np.ndarray  # uint32

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def sizes(self) -> np.ndarray:
        return np.diff(self.offsets)

    def owners(self) -> np.ndarray:
        """The text index of every hash."""
        return np.repeat(np.arange(len(self), dtype=np.int64), self.sizes())

    def of(self, index: int) -> np.ndarray:
        return self.hashes[self.offsets[index] : self.offsets[index + 1]]

    @classmethod
    def concat(cls, parts: list[Shingles]) -> Shingles:
        return cls(
            join_offsets([p.offsets for p in parts]), np.concatenate([p.hashes for p in parts] or [[]])
        )

    def take(self, index: np.ndarray) -> Shingles:
        """The sets of texts `index`, in that order."""
        return Shingles(*ragged_take(self.offsets, self.hashes, index))


def ragged_take(offsets: np.ndarray, values: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, values) of the runs `index` of a flat ragged array, in that order."""
    sizes = np.diff(offsets)[index]
    ends = np.cumsum(sizes)
    positions = np.repeat(offsets[:-1][index] - (ends - sizes), sizes) + np.arange(
        int(ends[-1]) if len(ends) else 0
    )
    return np.concatenate([[0], ends]).astype(np.int64), values[positions]


def join_offsets(parts: list[np.ndarray]) -> np.ndarray:
    """The offsets of several flat ragged arrays laid end to end."""
    joined = [np.zeros(1, dtype=np.int64)]
    for offsets in parts:
        joined.append(offsets[1:] + joined[-1][-1])
    return np.concatenate(joined).astype(np.int64)


def fmix64(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser: spreads structured sums over all bits (wrapping arithmetic)."""
    values = values ^ (values >> np.uint64(33))
    values = values * np.uint64(0xFF51AFD7ED558CCD)
    values = values ^ (values >> np.uint64(33))
    values = values * np.uint64(0xC4CEB9FE1A85EC53)
    return values ^ (values >> np.uint64(33))


def token_hashes(
    texts: pl.Series, kind: str = "token", normalized: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(owner, hash) of every token of every text, in order; null texts have no tokens.

    kind: "token" (TOKEN_PATTERN), "word" (WORD_PATTERN: letter/digit runs only) or "char".
    `normalized`: the texts are curate.text.normalize_expr's output, TOKEN_PATTERN tokens joined
    by single spaces (a token holds no whitespace), so for "token" a split on spaces gives the
    same tokens as matching the pattern again, at a third of the cost."""
    if kind not in SHINGLE_KINDS:
        raise ValueError(f"shingle kind must be one of {', '.join(SHINGLE_KINDS)}, got {kind!r}")
    text = pl.col("t")
    split = {
        "token": text.str.split(" ") if normalized else text.str.extract_all(TOKEN_PATTERN),
        "word": text.str.extract_all(WORD_PATTERN),
        "char": text.str.replace_all(" ", "", literal=True).str.split(""),
    }[kind]
    frame = (
        pl.DataFrame({"t": texts.cast(pl.String)})
        .with_row_index("owner")
        .select("owner", split.alias("tok"))
        .explode("tok")
        .drop_nulls("tok")
        .filter(pl.col("tok") != "")
    )
    return (
        frame["owner"].to_numpy().astype(np.int64),
        frame["tok"].hash(_TOKEN_SEED).to_numpy(),
    )


def ngram_hashes(
    texts: pl.Series, size: int, kind: str = "token", normalized: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(owner, start token position, 64-bit hash) of every n-gram of `size` tokens of every text
    (`normalized`: see token_hashes).

    A text with fewer than `size` tokens (but at least one) has one n-gram: all its tokens."""
    if not 1 <= size <= MAX_SHINGLE_SIZE:
        raise ValueError(f"n-gram size must be between 1 and {MAX_SHINGLE_SIZE}, got {size}")
    owner, hashes = token_hashes(texts, kind, normalized)
    counts = np.bincount(owner, minlength=len(texts)).astype(np.int64)
    first = (np.cumsum(counts) - counts)[owner]  # index of the owner's first token
    # Lay the texts out with size - 1 zero hashes after each one, so that a window never reaches
    # into the next text and a short text's one window holds just its own tokens.
    padded = np.zeros(len(hashes) + len(texts) * (size - 1) + size, dtype=np.uint64)
    slot = np.arange(len(hashes), dtype=np.int64) + owner * (size - 1)
    padded[slot] = hashes
    combined = np.zeros(len(hashes), dtype=np.uint64)
    window = np.empty(len(hashes), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(size):
            np.multiply(padded[slot + k], _POSITION_MULTIPLIERS[k], out=window)
            combined += window
    index = np.arange(len(hashes), dtype=np.int64) - first
    keep = (index + size <= counts[owner]) | ((index == 0) & (counts[owner] < size))
    return owner[keep], index[keep], fmix64(combined[keep] + np.uint64(size))


def shingle(texts: pl.Series, size: int = 5, kind: str = "token", normalized: bool = False) -> Shingles:
    """The shingle sets of `texts` (already normalised): hashed n-grams of `size` tokens or
    characters (`normalized`: the texts are normalize_expr's output, see token_hashes)."""
    owner, _, hashes = ngram_hashes(texts, size, kind, normalized)
    keys = (owner.astype(np.uint64) << np.uint64(32)) | (hashes & np.uint64(0xFFFFFFFF))
    keys = np.sort(keys)  # owner in the high bits: sorted by text, then hash
    if len(keys):
        keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])]
    owners = (keys >> np.uint64(32)).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(owners, minlength=len(texts)))]).astype(np.int64)
    return Shingles(offsets, (keys & np.uint64(0xFFFFFFFF)).astype(np.uint32))
