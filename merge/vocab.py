"""Vocabularies of a merge: which embedding row of each input stands for each output token.

With `tokenizer_source` set (a model, `base`, or `union`), rows are matched by token string, as
mergekit does, so models whose tokenizers number tokens differently still merge token by token:

- a model or `base`: the output vocabulary is that model's tokenizer (its tokenizer files are
  copied) and the output keeps its number of embedding rows;
- `union`: the base's tokenizer (base_model, else the first model) with every token of the other
  models it lacks appended in config order, ordinary tokens first (by id), then added tokens;
  written as added tokens of the base's tokenizer.json, as mergekit does. The output has one
  row per token.

Where an input lacks a token, its row is filled as mergekit fills it: with the row of the only
input that has the token, else the base's row when the base has it, else the mean of the rows
of the inputs that have it (zero when none has it). So a token only one model knows keeps that
model's embedding, and a token every model knows merges its own rows.

Without readable tokenizer.json files rows are matched by id: truncated, or padded by the same
rule. Everything here is index arithmetic done once when planning; at merge time each input's
vocabulary tensor is gathered with one index_select (see `align`), one tensor at a time.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import MergeError


@dataclass
class Vocabulary:
    """The output vocabulary and, per input, the row it reads for each output row (-1: lacks it)."""

    size: int
    rows: list[torch.Tensor]  # per plan input: LongTensor(size)
    tokens: dict[int, str] | None  # output id -> token, when known
    added: list[str]  # union: the tokens appended to the donor's tokenizer, in id order
    by_token: bool
    prefer: int | None = None  # the plan input whose rows fill gaps first (the base_model)

    def identity(self, input_rows: Sequence[int | None]) -> bool:
        """Whether every input already has exactly this layout (nothing to gather)."""
        return all(
            rows is not None and rows == self.size and bool((mapping == torch.arange(self.size)).all())
            for mapping, rows in zip(self.rows, input_rows, strict=True)
        )


@functools.lru_cache(maxsize=32)
def token_table(directory: Path | None) -> dict[int, str] | None:
    """id -> token from a tokenizer.json (model vocabulary and added tokens), or None when there is none."""
    if directory is None or not (directory / "tokenizer.json").is_file():
        return None
    try:
        data = json.loads((directory / "tokenizer.json").read_text(encoding="utf-8"))
        vocab = data.get("model", {}).get("vocab") or {}
        if isinstance(vocab, list):  # unigram: [token, score] by id
            table = {index: entry[0] for index, entry in enumerate(vocab)}
        else:
            table = {int(index): token for token, index in vocab.items()}
        for added in data.get("added_tokens") or []:
            table[int(added["id"])] = added["content"]
        return table
    except (ValueError, TypeError, KeyError, AttributeError, IndexError):
        return None


@functools.lru_cache(maxsize=32)
def added_tokens(directory: Path | None) -> frozenset[str]:
    """The contents of a tokenizer.json's added tokens."""
    if directory is None or not (directory / "tokenizer.json").is_file():
        return frozenset()
    try:
        data = json.loads((directory / "tokenizer.json").read_text(encoding="utf-8"))
        return frozenset(added["content"] for added in data.get("added_tokens") or [])
    except (ValueError, TypeError, KeyError):
        return frozenset()


def build(
    tables: list[dict[int, str] | None],
    added: list[frozenset[str]],
    rows: list[int],
    donor: int,
    union: bool,
    labels: list[str],
) -> Vocabulary:
    """The vocabulary for tokenizer_source (donor's tokenizer, or the union built on it)."""
    # A token's id past a model's embedding rows has no row (mergekit strips such tokens).
    usable = [
        {i: tok for i, tok in table.items() if i < count} if table else None
        for table, count in zip(tables, rows, strict=True)
    ]
    if any(table is None for table in usable):
        if union:
            missing = [label for label, table in zip(labels, usable, strict=True) if table is None]
            raise MergeError(
                f"tokenizer_source: union needs a readable tokenizer.json in every model; "
                f"missing or unreadable in {', '.join(missing)}"
            )
        size = rows[donor]
        maps = [_by_id(count, size) for count in rows]
        return Vocabulary(size, maps, None, [], by_token=False)
    out = dict(usable[donor])
    new: list[str] = []
    if union:
        known = set(out.values())
        ordered = [donor, *(i for i in range(len(usable)) if i != donor)]
        for regular in (True, False):
            for index in ordered:
                for _, token in sorted(usable[index].items()):
                    if (token in added[index]) == regular or token in known:
                        continue
                    known.add(token)
                    new.append(token)
        start = max(out) + 1 if out else 0
        if len(tables[donor]) != start:
            raise MergeError(
                f"tokenizer_source: union: the tokenizer of {labels[donor]} has ids that are not "
                f"0..{start - 1} with one embedding row each, so tokens cannot be appended to it"
            )
        out.update({start + offset: token for offset, token in enumerate(new)})
        size = start + len(new)
    else:
        size = rows[donor]
    maps = []
    for table in usable:
        ids = {token: i for i, token in table.items()}
        mapping = torch.full((size,), -1, dtype=torch.long)
        for out_id, token in out.items():
            if token in ids:
                mapping[out_id] = ids[token]
        maps.append(mapping)
    if not union:
        # Rows without a token in the donor's table (padding) are matched by id.
        unnamed = torch.tensor([i for i in range(size) if i not in out], dtype=torch.long)
        for mapping, count in zip(maps, rows, strict=True):
            if len(unnamed):
                mapping[unnamed] = torch.where(unnamed < count, unnamed, -1)
    return Vocabulary(size, maps, out, new, by_token=True)


def _by_id(count: int, size: int) -> torch.Tensor:
    mapping = torch.arange(size)
    return torch.where(mapping < count, mapping, -1)


def align(tensors: list[torch.Tensor], maps: list[torch.Tensor], prefer: int | None) -> list[torch.Tensor]:
    """Each tensor's rows in the output vocabulary's order, missing rows filled (see the module docstring).

    `prefer` is the position of the base among the tensors (its rows fill gaps it can fill).
    """
    present = torch.stack([mapping >= 0 for mapping in maps])  # inputs x rows
    count = present.sum(dim=0)
    gaps = torch.nonzero(count < len(tensors)).reshape(-1)
    fill = None
    if len(gaps):
        dtype = torch.promote_types(torch.float32, tensors[0].dtype)
        total = torch.zeros((len(gaps), *tensors[0].shape[1:]), dtype=dtype)
        for tensor, mapping, has in zip(tensors, maps, present, strict=True):
            rows = has[gaps]
            total[rows] += tensor.index_select(0, mapping[gaps][rows]).to(dtype)
        fill = total / count[gaps].clamp(min=1).reshape(-1, *[1] * (total.dim() - 1)).to(dtype)
        if prefer is not None:
            rows = present[prefer][gaps]
            base = tensors[prefer].index_select(0, maps[prefer][gaps][rows]).to(dtype)
            fill[rows] = base
    aligned = []
    for tensor, mapping, has in zip(tensors, maps, present, strict=True):
        out = tensor.index_select(0, mapping.clamp(min=0))
        if fill is not None:
            missing = ~has[gaps]
            out[gaps[missing]] = fill[missing].to(out.dtype)
        aligned.append(out)
    return aligned


def write_union_tokenizer(donor_dir: Path, out_dir: Path, tokens: list[str]) -> None:
    """The donor's tokenizer.json with `tokens` appended as added tokens (ids in order after its own)."""
    from tokenizers import AddedToken, Tokenizer

    tokenizer = Tokenizer.from_file(str(donor_dir / "tokenizer.json"))
    tokenizer.add_tokens([AddedToken(token, normalized=True, special=False) for token in tokens])
    tokenizer.save(str(out_dir / "tokenizer.json"))
