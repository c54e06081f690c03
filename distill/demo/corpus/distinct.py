"""Drawing problems that the curation stages will not mistake for one another.

Problems are kept apart so that the stages are judged on the planted defects only. Each is compared
as the stages see it: its R1 prompt in curate's comparison normalisation (curate.text), as token
5-gram shingles (curate.dedup.shingles, near_dedup's) and word 8-grams (decontaminate's). A new
problem is refused when it equals one already drawn; when it is near one already drawn (near_dedup's
rule with a margin: shingle Jaccard (curate.dedup.lsh.jaccard) >= 0.6 instead of 0.7, or the smaller
set 90% inside the other instead of 95%, and no number telling them apart rather than no word,
number or relation); or, for a training problem, when its shared word 8-grams make up a quarter of
the shorter text's with an eval problem (decontaminate's rule, which needs half).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from curate.dedup.lsh import is_subsequence, jaccard
from curate.dedup.shingles import Shingles, ngram_hashes, shingle
from curate.text import normalize_expr
from distill.demo.corpus.families import FAMILIES
from distill.demo.corpus.task import Task

# near_dedup's shingles and decontaminate's n-grams (the stages' defaults)
SHINGLE_SIZE, NGRAM = 5, 8
# The margins: what counts as too close here, against the stages' 0.7 / 0.95 / 0.5.
NEAR_JACCARD, NEAR_CONTAINMENT, LEAK_OVERLAP = 0.6, 0.9, 0.25
BATCH = 64  # candidates made and compared per batch (one Polars call for all of them)


@dataclass
class Seen:
    """Problems as the dedup and decontamination stages compare them."""

    texts: list[str]  # normalised (curate.text)
    shingles: Shingles  # token 5-grams (near_dedup)
    grams: list[set[int]]  # word 8-gram hashes (decontaminate)
    numbers: list[list[str]]

    @classmethod
    def of(cls, texts: list[str]) -> Seen:
        frame = pl.DataFrame({"t": texts}).select(normalize_expr("t").fill_null(""))
        normalized = frame["t"]
        owner, _, hashes = ngram_hashes(normalized, NGRAM, "word")
        grams: list[set[int]] = [set() for _ in texts]
        for o, h in zip(owner.tolist(), hashes.tolist(), strict=True):
            grams[o].add(h)
        numbers = normalized.str.extract_all(r"\d+").to_list()
        return cls(normalized.to_list(), shingle(normalized, SHINGLE_SIZE, "token"), grams, numbers)


@dataclass
class Pool:
    """Draws distinct problems of one domain, keeping training problems apart from eval problems
    (the module docstring). Candidates are made in batches, then taken or refused one by one, in order."""

    domain: str
    rng: random.Random
    drawn: Shingles = field(default_factory=lambda: Shingles(np.zeros(1, np.int64), np.zeros(0, np.uint32)))
    owner: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # the text of each drawn shingle
    numbers: list[list[str]] = field(default_factory=list)
    texts: set[str] = field(default_factory=set)
    eval_grams: list[set[int]] = field(default_factory=list)
    pending: list[tuple[int, Task]] = field(default_factory=list)
    batch: Seen | None = None  # the prompts of the pending candidates
    raw: Seen | None = None  # their problems without the instruction (what an eval file holds)

    def _candidates(self) -> None:
        functions, weights = zip(*FAMILIES[self.domain], strict=True)
        tasks = [self.rng.choices(functions, weights)[0](self.rng) for _ in range(BATCH)]
        self.batch = Seen.of([t.item().prompt("r1") for t in tasks])
        self.raw = Seen.of([t.problem for t in tasks])
        self.pending = list(enumerate(tasks))[::-1]

    def _near(self, index: int) -> bool:
        """Near one drawn problem: similar shingles and no number telling the two apart."""
        mine, numbers = self.batch.shingles.of(index), self.batch.numbers[index]
        # Candidates: drawn problems sharing 60% of the smaller shingle set with this one (either rule needs it).
        shared = np.bincount(self.owner[np.isin(self.drawn.hashes, mine)], minlength=len(self.numbers))
        sharing = np.nonzero(shared >= NEAR_JACCARD * np.minimum(self.drawn.sizes(), len(mine)))[0]
        close = [i for i in sharing.tolist() if is_subsequence(*sorted((numbers, self.numbers[i]), key=len))]
        if not close:
            return False
        sets = _append(self.drawn, mine)
        pairs = np.stack([np.array(close), np.full(len(close), len(self.numbers))], axis=1)
        similar = jaccard(pairs, sets)
        sizes = sets.sizes()[pairs]
        shared = np.rint(similar * sizes.sum(axis=1) / (1.0 + similar))  # from J = i / (|A| + |B| - i)
        return bool(((similar >= NEAR_JACCARD) | (shared >= NEAR_CONTAINMENT * sizes.min(axis=1))).any())

    def _leaks(self, grams: set[int]) -> bool:
        """Shares a quarter of the shorter text's word 8-grams with an eval problem."""
        return any(
            len(grams & other) >= LEAK_OVERLAP * min(len(grams), len(other)) for other in self.eval_grams
        )

    def draw(self, held_out: bool) -> Task:
        for _ in range(2_000):
            if not self.pending:
                self._candidates()
            index, task = self.pending.pop()
            text = self.batch.texts[index]
            if text in self.texts or (not held_out and self._leaks(self.batch.grams[index])):
                continue
            if self._near(index):
                continue
            if held_out:
                self.eval_grams.append(self.raw.grams[index])  # the eval file holds the problem alone
            mine = self.batch.shingles.of(index)
            self.drawn = _append(self.drawn, mine)
            self.owner = np.append(self.owner, np.full(len(mine), len(self.numbers)))
            self.numbers.append(self.batch.numbers[index])
            self.texts.add(text)
            return task
        raise RuntimeError(f"cannot draw another distinct {self.domain} problem; lower the corpus size")


def _append(sets: Shingles, hashes: np.ndarray) -> Shingles:
    """`sets` with one more text's shingle set."""
    offsets = np.append(sets.offsets, sets.offsets[-1] + len(hashes))
    return Shingles(offsets, np.concatenate([sets.hashes, hashes]))
