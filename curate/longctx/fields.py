"""Naming a trace field in a stage option: a column (`problem`, `source`) or a key of the `meta`
JSON that ingest filled with every unmapped input field (`meta.category`, `meta.context`)."""

from __future__ import annotations

import polars as pl

from curate.errors import CurateError
from curate.schema import TRACE_COLUMNS


def base_column(spec: str) -> str:
    """The stored column a field spec reads."""
    column = "meta" if spec.startswith("meta.") else spec
    if column not in TRACE_COLUMNS or (column == "meta" and len(spec) <= len("meta.")):
        raise CurateError(
            f"unknown field {spec!r}: use a trace column ({', '.join(TRACE_COLUMNS)}) or meta.KEY"
        )
    return column


def field_expr(spec: str) -> pl.Expr:
    """A string expression for the field (JSON values from meta come back as their JSON text)."""
    column = base_column(spec)
    if column == "meta":
        return pl.col("meta").str.json_path_match("$." + spec[len("meta.") :])
    return pl.col(column).cast(pl.String)
