"""The trace record (design §2) and the schemas of the workspace's side tables.

A trace is one teacher sample. `id` is a content hash of problem + response, so the same sample
from two sources has the same id; `row_id` is the row's position in ingest order and is unique,
which is what lets the ledger account for every ingested row even when ids collide.
"""

from __future__ import annotations

import hashlib

import pyarrow as pa

from curate.think import reasoning_of

TRACE_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("row_id", pa.int64()),
        ("problem_id", pa.string()),
        ("source", pa.string()),
        ("origin", pa.string()),  # file:line (or file#record) the row was read from, 1-based
        ("subset", pa.string()),  # the record's own source tag (olympiads, taco, ...); `source` is the input
        ("dataset_split", pa.string()),  # the split it was read from (DatasetDict, hub), when known
        ("problem", pa.string()),
        ("reasoning", pa.string()),
        ("response", pa.string()),
        ("reference", pa.string()),
        ("tests", pa.string()),
        ("domain", pa.string()),  # one of DOMAINS, set by the domain stage
        ("teacher", pa.string()),
        ("meta", pa.string()),
    ]
)
TRACE_COLUMNS = TRACE_SCHEMA.names

# The pipeline order, the one place it is written (curate.stages builds PIPELINE from it; folders,
# the ledger and SQL use the names). longreps and longattn are opt-in (`enabled: true`).
STAGE_NAMES = (
    "ingest",
    "normalize",
    "exact_dedup",
    "near_dedup",
    "decontaminate",
    "verify",
    "quality",
    "longreps",
    "longattn",
    "domain",
    "select",
    "shard",
)
# Former stage names, still accepted in configs and `--until` (and as SQL views `stage_<old>`).
STAGE_ALIASES = {"split": "domain"}

# The domains the domain stage assigns (and shards are cut by).
DOMAINS = ("math", "code", "science", "other")

# Columns every rejected row carries on top of its own (design §3).
REJECT_COLUMNS = ("stage", "reason", "detail")

# Side tables: a stage that feeds one of these SQL views writes `<view>.parquet` with this schema
# into its stage folder. A view whose stage has not run is an empty table of the same schema.
SIDE_TABLE_SCHEMAS: dict[str, pa.Schema] = {
    "verify": pa.schema(
        [
            ("id", pa.string()),
            ("row_id", pa.int64()),
            ("kind", pa.string()),
            ("status", pa.string()),
            ("extracted", pa.string()),
            ("detail", pa.string()),
            ("seconds", pa.float64()),
        ]
    ),
    "clusters": pa.schema(
        [
            ("id", pa.string()),
            ("row_id", pa.int64()),
            ("stage", pa.string()),
            ("cluster_id", pa.int64()),
            ("representative_id", pa.string()),
            ("representative_row_id", pa.int64()),
            ("similarity", pa.float64()),
            ("kept", pa.bool_()),  # false: the row was dropped by this stage (see rejected)
        ]
    ),
    "contamination": pa.schema(
        [
            ("id", pa.string()),
            ("row_id", pa.int64()),
            ("benchmark", pa.string()),
            ("benchmark_item", pa.string()),
            ("matched_ngram", pa.string()),
            ("overlap", pa.float64()),  # share of the shorter text's n-grams found in the other
            ("dropped", pa.bool_()),  # false when decontaminate only flags
        ]
    ),
    "shards": pa.schema(
        [
            ("id", pa.string()),
            ("row_id", pa.int64()),
            ("domain", pa.string()),  # one of DOMAINS, set by the domain stage
            ("split", pa.string()),
            ("file", pa.string()),
        ]
    ),
}


def content_hash(*parts: str | None, size: int = 16) -> str:
    """Stable hex digest of text parts; None and "" differ so a missing response is not an empty one."""
    digest = hashlib.blake2b(digest_size=size)
    for part in parts:
        digest.update(b"\x00" if part is None else b"\x01" + part.encode("utf-8", "surrogatepass"))
        digest.update(b"\x1f")
    return digest.hexdigest()


def trace_id(problem: str | None, response: str | None) -> str:
    return content_hash(problem, response)


def problem_id(problem: str | None) -> str:
    """Groups the generations of one problem, across sources: a hash of the problem text."""
    return content_hash(problem, size=8)


# The trace's `reasoning` column: one rule for the whole tree (curate.think).
split_think = reasoning_of
