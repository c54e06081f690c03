"""Helpers that several stages share. Stage modules import this module, never each other.

seeded_key          a stable pseudo-random number per value (select, domain, shard)
load_tokenizer …    token counting with the target tokenizer (quality, shard)
plain_strings       Arrow tables with one stable string type (the runner's parts, shards)
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pyarrow as pa

from curate.errors import CurateError

_UNIT = float(1 << 64)


def seeded_key(values: list[Any], seed: int | str) -> list[float]:
    """A stable pseudo-random number in [0, 1) per value: the same for the same seed on every run."""
    prefix = f"{seed}\x1f".encode()
    return [
        int.from_bytes(hashlib.blake2b(prefix + str(v).encode(), digest_size=8).digest(), "big") / _UNIT
        for v in values
    ]


# Token counting ----------------------------------------------------------------------------------


def load_tokenizer(name_or_path: str) -> Any:
    """A Hugging Face tokenizer by hub name or local path, or a CurateError saying why not."""
    path = Path(name_or_path).expanduser()
    if name_or_path.startswith((".", "/", "~")) and not path.is_dir():
        raise CurateError(f"cannot load tokenizer {name_or_path!r}: no such folder")
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(name_or_path)
    except Exception as error:  # transformers raises OSError, ValueError, HTTP errors ... for a bad name
        raise CurateError(
            f"cannot load tokenizer {name_or_path!r} ({type(error).__name__}: {str(error).splitlines()[0][:300]}); "
            "give a local tokenizer folder or a cached hub name"
        ) from error


def tokenizer_checksum(tokenizer: Any) -> str:
    """A content checksum of a tokenizer, independent of where it was loaded from."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    content = backend.to_str() if backend is not None else json.dumps(sorted(tokenizer.get_vocab().items()))
    return hashlib.sha256(content.encode()).hexdigest()[:32]


def count_tokens(texts: list[str | None], tokenizer: Any = None) -> list[int]:
    """Tokens per text with `tokenizer` (no special tokens), or whitespace-separated words without one."""
    if tokenizer is None:
        return [len(t.split()) if t else 0 for t in texts]
    filled = [t or "" for t in texts]
    return [len(ids) for ids in tokenizer(filled, add_special_tokens=False)["input_ids"]]


# Arrow -------------------------------------------------------------------------------------------


def _plain_type(kind: pa.DataType) -> pa.DataType:
    if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return pa.string()
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return pa.list_(_plain_type(kind.value_type))
    if pa.types.is_struct(kind):
        return pa.struct([pa.field(f.name, _plain_type(f.type), f.nullable) for f in kind])
    return kind


def plain_strings(table: pa.Table) -> pa.Table:
    """The table with plain `string` and `list` types at every depth (Polars writes large and view
    types), so every part of every stage, and every shard, has one stable schema."""
    schema = pa.schema([pa.field(f.name, _plain_type(f.type), f.nullable) for f in table.schema])
    return table if schema == table.schema else table.cast(schema)
