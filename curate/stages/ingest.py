"""ingest: read every input, detect its format, map each record to trace rows.

A record that cannot be read (broken JSON, invalid UTF-8, wrong field types, no problem) still
becomes a row, with its raw text in `meta`, rejected here with reason `malformed` and a detail
naming file, line and field. JSON lines are parsed in worker processes, chunk by chunk, in order.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import polars as pl
import pyarrow as pa

from curate.errors import CurateError, InputError
from curate.formats import ADAPTERS, Malformed, detect_format
from curate.readers import Chunk, Input, checksum, iter_chunks, parse_line, sample_records
from curate.schema import TRACE_SCHEMA, content_hash, problem_id, trace_id
from curate.stage import DETAIL, REASON, Stage, StageContext, keep, ordered_pool_map
from curate.think import reasoning_of

INGEST_SCHEMA = pa.schema(
    [f for f in TRACE_SCHEMA if f.name != "row_id"] + [(REASON, pa.string()), (DETAIL, pa.string())]
)


def _meta_json(meta: dict[str, Any]) -> str:
    return orjson.dumps(meta, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def _malformed(origin: str, raw_text: str, message: str) -> dict[str, Any]:
    return {
        "id": content_hash(raw_text),
        "origin": origin,
        "meta": _meta_json({"raw": raw_text}),
        REASON: "malformed",
        DETAIL: f"{origin}: {message}",
    }


def convert_record(
    record: Any, origin: str, raw_text: str | None, adapter_name: str, source: str
) -> list[dict]:
    """Trace rows for one raw record (a malformed row when it cannot be converted)."""
    if not isinstance(record, dict):
        return [
            _malformed(origin, raw_text or repr(record), f"expected an object, got {type(record).__name__}")
        ]
    try:
        rows = ADAPTERS[adapter_name].convert(record)
        if not rows:
            raise Malformed(None, "the record holds no trace")
        out = []
        for row in rows:
            problem, response = row.get("problem"), row.get("response")
            if not isinstance(problem, str):
                raise Malformed("problem", "missing")
            reasoning = row.get("reasoning")
            out.append(
                {
                    "id": trace_id(problem, response),
                    "problem_id": problem_id(problem),
                    "source": row.get("source") or source,
                    "origin": origin,
                    "problem": problem,
                    "reasoning": reasoning.strip() if isinstance(reasoning, str) else reasoning_of(response),
                    "response": response,
                    "reference": row.get("reference"),
                    "tests": row.get("tests"),
                    "teacher": row.get("teacher"),
                    "meta": _meta_json(row.get("meta") or {}),
                    REASON: None,
                    DETAIL: None,
                }
            )
        return out
    except Malformed as error:
        return [_malformed(origin, raw_text or _meta_json(record), str(error))]
    except Exception as error:  # a record must never stop the run; the reason says what broke
        return [_malformed(origin, raw_text or _meta_json(record), f"{type(error).__name__}: {error}")]


def convert_chunk(job: tuple[Chunk, str, str]) -> pa.Table:
    """Worker entry point: one chunk of an input to an Arrow table (row_id is added by the parent)."""
    chunk, adapter_name, source = job
    rows: list[dict] = []
    for line, raw in chunk.lines:
        record, error, text = parse_line(raw)
        origin = f"{chunk.path}:{line}"
        if error:
            rows.append(_malformed(origin, text, error))
        else:
            rows += convert_record(record, origin, text if len(text) < 4096 else None, adapter_name, source)
    for index, record in chunk.records:
        rows += convert_record(record, f"{chunk.path}#{index}", None, adapter_name, source)
    # Column lists convert about twice as fast as from_pylist's per-row dicts (the costliest part of ingest).
    columns = {name: [row.get(name) for row in rows] for name in INGEST_SCHEMA.names}
    return pa.Table.from_pydict(columns, schema=INGEST_SCHEMA)


class Ingest(Stage):
    name = "ingest"
    version = "1"
    defaults = {"format": None, "source": None, "chunk_bytes": 8 << 20}
    parallel = False  # parallel already: chunks are parsed in the pool that read() drives

    def __init__(self, inputs: list[Input], **options: Any):
        super().__init__(**options)
        self.inputs = inputs
        fmt = self.options["format"]
        if fmt is not None and fmt not in ADAPTERS:
            raise CurateError(f"unknown --format {fmt!r}; known formats: {', '.join(ADAPTERS)}")
        self.formats = {inp.path: fmt or self._detect(inp) for inp in inputs}
        self.checksums = {inp.path: checksum(inp) for inp in inputs}

    @staticmethod
    def _detect(inp: Input) -> str:
        sample = sample_records(inp)
        if not sample:
            raise InputError(inp.path, "no readable record in the first lines (is it JSON lines?)", line=1)
        detected = detect_format(sample)
        if detected is None:
            fields = ", ".join(sorted(sample[0])[:12])
            raise InputError(
                inp.path,
                f"unknown format: fields {fields}; pass --format with one of {', '.join(ADAPTERS)}",
                line=1,
            )
        return detected

    def fingerprint(self) -> dict[str, Any]:
        inputs = [
            {
                "path": p,
                "sha256": self.checksums[p],
                "format": self.formats[p],
                "source": self.options["source"],
            }
            for p in self.formats
        ]
        return {"version": self.version, "inputs": inputs}

    def read(self, ctx: StageContext) -> Iterator[pl.DataFrame]:
        ctx.stats["inputs"] = [
            {
                "path": inp.path,
                "kind": inp.kind,
                "format": self.formats[inp.path],
                "sha256": self.checksums[inp.path],
            }
            for inp in self.inputs
        ]
        jobs = (
            (chunk, self.formats[inp.path], self.options["source"] or inp.stem)
            for inp in self.inputs
            for chunk in iter_chunks(inp, chunk_bytes=self.options["chunk_bytes"])
        )
        big = sum(inp.size for inp in self.inputs if inp.kind == "jsonl") > 4 * self.options["chunk_bytes"]
        tables = (
            ordered_pool_map(convert_chunk, jobs, ctx.workers)
            if ctx.workers > 1 and big
            else map(convert_chunk, jobs)
        )
        next_row = 0
        for table in tables:
            row_ids = pa.array(range(next_row, next_row + table.num_rows), pa.int64())
            next_row += table.num_rows
            yield pl.from_arrow(table.add_column(1, "row_id", row_ids))

    def process(self, batch: pl.DataFrame) -> pl.DataFrame:
        return batch if REASON in batch.columns else keep(batch)
