"""ingest: read every input, detect its format, map each record to trace rows.

A record that cannot be read (broken JSON, invalid UTF-8, wrong field types, no problem) still
becomes a row, with its raw text in `meta`, rejected here with reason `malformed` and a detail
naming file, line and field. JSON lines are parsed in worker processes, chunk by chunk, in order,
by the fast path (curate.ingest_fast; option `fast`, on by default) where a record's shape allows,
else by the per-record path; both write the same bytes.

`source` is the input's name (or the `source` option); a record's own source tag is kept in
`meta` and in the `subset` column. The `map` option renames columns before detection:
`{problem: Question, reference: Answer}` for every input, or `{"qa/*.csv": {problem: Question}}`
per input (keys are globs over the input's path). `split` picks the split of DatasetDict folders
and hub names that do not name one (default `train`; `all` reads every split).
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pyarrow as pa

from curate.errors import CurateError, InputError, did_you_mean
from curate.formats import ADAPTERS, Malformed, closest_formats, convert, detect_format, remap
from curate.ingest_fast import FIELDS, MAPPERS, reasoning_column, trace_ids
from curate.readers import (
    DEFAULT_SPLIT,
    Chunk,
    Input,
    checksum,
    iter_chunks,
    other_split_files,
    parse_line,
    sample_records,
)
from curate.schema import TRACE_SCHEMA, content_hash
from curate.stage import DETAIL, REASON, Stage, StageContext, keep, ordered_pool_map
from curate.think import reasoning_of

INGEST_SCHEMA = pa.schema(
    [f for f in TRACE_SCHEMA if f.name != "row_id"] + [(REASON, pa.string()), (DETAIL, pa.string())]
)


def _meta_json(meta: dict[str, Any]) -> str:
    try:
        return orjson.dumps(meta, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError as error:  # nested deeper than orjson writes (254 levels): keep it as text
        return orjson.dumps({"unencodable": str(error), "repr": repr(meta)}).decode()


def _malformed(origin: str, raw_text: str, message: str, source: str | None = None) -> dict[str, Any]:
    return {
        "id": content_hash(raw_text),
        "source": source,
        "origin": origin,
        "meta": _meta_json({"raw": raw_text}),
        REASON: "malformed",
        DETAIL: f"{origin}: {message}",
    }


def trace_rows(
    rows: list[dict[str, Any]],
    origin: str,
    source: str,
    split: str | None,
) -> list[dict]:
    """Trace rows from the partial rows of `curate.formats.convert` (each with a problem): ids,
    source, origin and meta filled in."""
    out = []
    for row in rows:
        problem, response = row["problem"], row.get("response")
        ids = trace_ids(problem, response)
        reasoning = row.get("reasoning")
        out.append(
            {
                "id": ids[0],
                "problem_id": ids[1],
                "source": source,
                "origin": origin,
                "subset": row.get("subset"),
                "dataset_split": split,
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


def convert_record(
    record: Any,
    origin: str,
    raw_text: str | None,
    adapter_name: str,
    source: str,
    mapping: dict[str, str] | None = None,
    split: str | None = None,
) -> list[dict]:
    """Trace rows for one raw record (a malformed row when it cannot be converted): the per-record path."""
    if not isinstance(record, dict):
        message = f"expected an object, got {type(record).__name__}"
        return [_malformed(origin, raw_text or repr(record), message, source)]
    try:
        return trace_rows(convert(record, adapter_name, mapping), origin, source, split)
    except Malformed as error:
        return [_malformed(origin, raw_text or _meta_json(record), str(error), source)]
    except Exception as error:  # a record must never stop the run; the reason says what broke
        message = f"{type(error).__name__}: {error}"
        return [_malformed(origin, raw_text or _meta_json(record), message, source)]


def fast_record(
    record: dict, origin: str, adapter_name: str, source: str, split: str | None
) -> list[dict] | None:
    """Trace rows for one parsed record by the fast path (curate.ingest_fast), or None to leave it
    to the per-record path (a shape the mapper does not cover, or any error)."""
    try:
        mapper = MAPPERS.get(adapter_name)
        if mapper is None:
            return trace_rows(convert(record, adapter_name), origin, source, split)
        mapped = mapper(record)
        return (
            None
            if mapped is None
            else trace_rows([dict(zip(FIELDS, mapped, strict=True))], origin, source, split)
        )
    except Exception:  # the per-record path gives this record its malformed row and reason
        return None


def _line_rows(
    raw: bytes, origin: str, adapter_name: str, source: str, mapping: dict, split: str | None, fast: bool
) -> list[dict]:
    """The rows of one JSON line that the columnar loop of `convert_chunk` did not take."""
    record, error, text = parse_line(raw)
    if error:
        return [_malformed(origin, text, error, source)]
    quick = fast_record(record, origin, adapter_name, source, split) if fast else None
    if quick is not None:
        return quick
    raw_text = text if len(text) < 4096 else None
    return convert_record(record, origin, raw_text, adapter_name, source, mapping, split)


@dataclass
class LineBlock:
    """Whole lines of an uncompressed JSON-lines file, as a byte range cut at a newline: the
    parent only finds the cuts, the worker reads the range and splits the lines (`chunk`), so no
    per-line Python runs in the parent and no text crosses a pipe (on a loaded machine a pipe
    hands 64 kB at a time between two processes, each waiting for the CPU)."""

    path: str
    split: str | None
    first_line: int
    offset: int
    size: int

    def chunk(self) -> Chunk:
        """The Chunk `curate.readers.iter_chunks` gives for these lines: 1-based numbers counting
        blank lines, which are no rows, and line ends stripped."""
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            data = handle.read(self.size)
        raws = data.split(b"\n")
        if data.endswith(b"\n"):
            raws.pop()  # what follows the last line end is no line
        if b"\r" in data:
            raws = [raw.rstrip(b"\r") for raw in raws]
        numbered = zip(range(self.first_line, self.first_line + len(raws)), raws, strict=True)
        if raws and min(raws)[:1] > b" ":  # no line starts with a byte <= space, so none is blank
            return Chunk(self.path, lines=list(numbered), split=self.split)
        return Chunk(self.path, lines=[(n, raw) for n, raw in numbered if raw.strip()], split=self.split)


def line_blocks(inp: Input, chunk_bytes: int) -> Iterator[LineBlock]:
    """An uncompressed JSON-lines input as LineBlocks of about `chunk_bytes` each."""
    split, first, offset, carry = inp.file_split(), 1, 0, b""
    with open(inp.path, "rb") as handle:
        while block := handle.read(chunk_bytes):
            block = carry + block
            cut = block.rfind(b"\n") + 1  # 0 when a line is longer than the block: read on
            carry = block[cut:]
            if cut:
                yield LineBlock(inp.path, split, first, offset, cut)
                first += block.count(b"\n", 0, cut)
                offset += cut
    if carry:
        yield LineBlock(inp.path, split, first, offset, len(carry))


def _chunks(inp: Input, chunk_bytes: int) -> Iterator[Chunk | LineBlock]:
    if inp.kind == "jsonl" and inp.compression is None:
        return line_blocks(inp, chunk_bytes)
    return iter_chunks(inp, chunk_bytes=chunk_bytes)


def _mapped_table(mapped: list[tuple], origins: list[str], source: str, split: str | None) -> pa.Table:
    """The trace rows of mapped records (tuples in FIELDS order), column by column over the block:
    ids, reasoning and meta as the per-record path's `trace_rows` makes them."""
    count = len(mapped)
    problem, response, reference, subset, teacher, meta = (
        zip(*mapped, strict=True) if mapped else ((),) * len(FIELDS)
    )
    ids = [trace_ids(p, r) for p, r in zip(problem, response, strict=True)]
    nothing = pa.nulls(count, pa.string())
    columns = {
        "id": [i[0] for i in ids],
        "problem_id": [i[1] for i in ids],
        "source": pa.array([source] * count, pa.string()),
        "origin": origins,
        "subset": subset,
        "dataset_split": pa.array([split] * count, pa.string()),
        "problem": problem,
        "reasoning": reasoning_column(response),
        "response": response,
        "reference": reference,
        "tests": nothing,
        "domain": nothing,
        "teacher": teacher,
        "meta": [_meta_json(m) for m in meta],
        REASON: nothing,
        DETAIL: nothing,
    }
    return pa.Table.from_pydict(columns, schema=INGEST_SCHEMA)


def _interleave(mapped: pa.Table, others: list[tuple[int, list[dict]]]) -> pa.Table:
    """The mapped rows with the rows of the other lines put back in file order; `others` holds
    (number of mapped rows before it, its rows) per line, in order."""
    other = pa.Table.from_pylist([row for _, line_rows in others for row in line_rows], schema=INGEST_SCHEMA)
    if mapped.num_rows == 0:  # the per-record path, or a block with no mapped line
        return other
    order, done, at = [], 0, mapped.num_rows
    for before, line_rows in others:
        order += range(done, before)
        order += range(at, at + len(line_rows))
        done, at = before, at + len(line_rows)
    order += range(done, mapped.num_rows)
    return pa.concat_tables([mapped, other]).take(pa.array(order, pa.int64()))


def convert_chunk(job: tuple) -> pa.Table:
    """Worker entry point: one chunk of an input to an Arrow table (row_id is added by the parent).
    `job` is (chunk or LineBlock, adapter name, source) with an optional column mapping and `fast` flag last;
    the fast path takes JSON lines without a mapping, record by record falling back.

    A line the format's mapper takes becomes a tuple, and the block's tuples become the table
    column by column (`_mapped_table`); any other line gets its rows from `_line_rows`, and they
    are put back in the file's order."""
    chunk, adapter_name, source, *rest = job
    if isinstance(chunk, LineBlock):
        chunk = chunk.chunk()
    mapping = rest[0] if rest else {}
    fast = (rest[1] if len(rest) > 1 else True) and not mapping
    mapper = MAPPERS.get(adapter_name) if fast else None
    split, loads = chunk.split, orjson.loads
    mapped, numbers, others = [], [], []
    for line, raw in chunk.lines:
        row = None
        if mapper is not None:
            try:
                record = loads(raw)  # refuses what parse_line would: invalid UTF-8, broken JSON
                row = mapper(record) if type(record) is dict else None
            except Exception:  # the per-record path says what is wrong with the line
                row = None
        if row is None:
            origin = chunk.line_origin(line)
            others.append((len(mapped), _line_rows(raw, origin, adapter_name, source, mapping, split, fast)))
        else:
            mapped.append(row)
            numbers.append(line)
    for number, record in chunk.records:
        origin = chunk.record_origin(number)
        others.append(
            (len(mapped), convert_record(record, origin, None, adapter_name, source, mapping, split))
        )
    table = _mapped_table(mapped, [chunk.line_origin(n) for n in numbers], source, split)
    return _interleave(table, others) if others else table


def convert_chunk_spooled(task: tuple[str, tuple]) -> str:
    """`convert_chunk` for a worker process: (spool file, job) -> the spool file, holding the
    table as Arrow IPC. A file, not the result pipe: a pickled table took 10x the time to send,
    and IPC bytes through the pipe stall on a loaded machine (see LineBlock)."""
    path, job = task
    table = convert_chunk(job)
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return path


def _pooled_tables(jobs: Iterator[tuple], workers: int, spool: Path) -> Iterator[pa.Table]:
    """The tables of `jobs` converted by a pool of `workers`, in order, through spool files."""
    spool.mkdir(exist_ok=True)
    tasks = ((str(spool / f"{index:06d}.arrow"), job) for index, job in enumerate(jobs))
    try:
        for path in ordered_pool_map(convert_chunk_spooled, tasks, workers):
            with pa.OSFile(path) as source:
                table = pa.ipc.open_stream(source).read_all()
            os.remove(path)
            yield table
    finally:
        shutil.rmtree(spool, ignore_errors=True)


def mapping_for(inp: Input, option: dict[str, Any] | None) -> dict[str, str]:
    """The column mapping for one input: a flat {target: field} mapping applies to every input; a
    mapping of globs to such mappings applies the ones whose glob matches the input's path."""
    if not option:
        return {}
    if not isinstance(option, dict):
        raise CurateError(f"map: expected a mapping of field names, got {type(option).__name__}")
    if all(isinstance(v, str) for v in option.values()):
        return dict(option)
    merged: dict[str, str] = {}
    for pattern, mapping in option.items():
        if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
            raise CurateError(f"map: {pattern!r}: expected {{target: field}}, got {mapping!r}")
        if (
            fnmatch.fnmatch(inp.path, pattern)
            or fnmatch.fnmatch(inp.path, f"*{pattern}")
            or inp.stem == pattern
        ):
            merged.update(mapping)
    return merged


# Column names a hand-made file often uses for each trace column, for the unknown-format hint.
MAP_HINTS = {
    "problem": ("question", "problem", "prompt", "input", "instruction", "query", "text"),
    "response": ("response", "output", "completion", "generation", "model_answer"),
    "reference": ("answer", "target", "reference", "gold", "ground_truth", "label", "expected"),
}


def suggest_map(seen: list[str]) -> str:
    """A --map value for fields that look like trace columns under another name (Question, target)."""
    by_lower = {name.lower(): name for name in seen}
    pairs = []
    for target, names in MAP_HINTS.items():
        field = next((by_lower[n] for n in names if n in by_lower), None)
        if field is not None and field != target and field not in dict(pairs).values():
            pairs.append((target, field))
    return ",".join(f"{target}={field}" for target, field in pairs)


def parse_map(text: str) -> dict[str, str]:
    """`problem=Question,reference=Answer` (the --map option) as {target: field}."""
    mapping = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        target, sep, field = item.partition("=")
        if not sep or not target.strip() or not field.strip():
            raise CurateError(
                f"--map {text!r}: expected TARGET=FIELD[,TARGET=FIELD...], e.g. problem=Question"
            )
        mapping[target.strip()] = field.strip()
    return mapping


class Ingest(Stage):
    name = "ingest"
    version = "2"
    defaults = {
        "format": None,
        "source": None,
        "map": None,
        "split": DEFAULT_SPLIT,
        "chunk_bytes": 8 << 20,
        "fast": True,
    }
    parallel = False  # parallel already: chunks are parsed in the pool that read() drives

    def __init__(self, inputs: list[Input], **options: Any):
        super().__init__(**options)
        # A folder's files of another split are left out, said on stderr and in the stage stats.
        self.skipped = other_split_files(inputs, self.options["split"])
        for inp in self.skipped:
            print(
                f"ingest: {inp.path}: split {inp.file_split()!r} left out (split: {self.options['split']}; "
                f"--split all reads it)",
                file=sys.stderr,
            )
        self.inputs = [
            replace(inp, split=inp.split or self.options["split"])
            for inp in inputs
            if inp not in self.skipped
        ]
        fmt = self.options["format"]
        if fmt is not None and fmt not in ADAPTERS:
            raise CurateError(
                f"unknown --format {fmt!r}{did_you_mean(fmt, ADAPTERS)}; known formats: {', '.join(ADAPTERS)}"
            )
        self.mappings = {inp.path: mapping_for(inp, self.options["map"]) for inp in self.inputs}
        self.formats = {inp.path: fmt or self._detect(inp, self.mappings[inp.path]) for inp in self.inputs}
        self.checksums = {inp.path: checksum(inp) for inp in self.inputs}

    @staticmethod
    def _detect(inp: Input, mapping: dict[str, str]) -> str:
        sample = [remap(record, mapping) for record in sample_records(inp)]
        if not sample:
            raise InputError(inp.path, "no readable record in the first lines (is it JSON lines?)", line=1)
        detected = detect_format(sample)
        if detected is None:
            seen = sorted({key for record in sample for key in record})
            closest = closest_formats(set(seen))
            hint = (
                f"closest formats: {', '.join(f'{n} ({ADAPTERS[n].description})' for n in closest)}; "
                if closest
                else ""
            )
            suggested = suggest_map(seen) or "problem=FIELD,response=FIELD,reference=FIELD"
            raise InputError(
                inp.path,
                f"unknown format: fields {', '.join(seen[:20])}{' ...' if len(seen) > 20 else ''}; {hint}"
                f"map your columns with --map {suggested} (or `map:` in curate.yaml), "
                f"or pass --format with one of {', '.join(ADAPTERS)}",
                line=1,
            )
        return detected

    def fingerprint(self) -> dict[str, Any]:
        inputs = [
            {
                "path": inp.path,
                "sha256": self.checksums[inp.path],
                "format": self.formats[inp.path],
                "source": self.options["source"],
                "map": self.mappings[inp.path],
                "split": inp.split,
            }
            for inp in self.inputs
        ]
        return {"version": self.version, "inputs": inputs}

    def read(self, ctx: StageContext) -> Iterator[pa.Table]:
        """Arrow tables as the workers build them, already decided (`_reason`): the runner writes
        them without a trip through Polars (curate.stage.to_arrow)."""
        ctx.stats["inputs"] = [
            {
                "path": inp.path,
                "kind": inp.kind,
                "format": self.formats[inp.path],
                "sha256": self.checksums[inp.path],
                **({"map": self.mappings[inp.path]} if self.mappings[inp.path] else {}),
                **({"split": inp.split} if inp.kind in ("arrow_dir", "hub") else {}),
            }
            for inp in self.inputs
        ]
        if self.skipped:
            ctx.stats["skipped_inputs"] = [
                {"path": inp.path, "split": inp.file_split()} for inp in self.skipped
            ]
        jobs = (
            (
                chunk,
                self.formats[inp.path],
                self.options["source"] or inp.stem,
                self.mappings[inp.path],
                self.options["fast"],
            )
            for inp in self.inputs
            for chunk in _chunks(inp, self.options["chunk_bytes"])
        )
        big = sum(inp.size for inp in self.inputs if inp.kind == "jsonl") > 4 * self.options["chunk_bytes"]
        tables = (
            _pooled_tables(jobs, ctx.workers, ctx.out_dir / "_spool")
            if ctx.workers > 1 and big
            else map(convert_chunk, jobs)
        )
        next_row = 0
        for table in tables:
            row_ids = pa.array(range(next_row, next_row + table.num_rows), pa.int64())
            next_row += table.num_rows
            yield table.add_column(1, "row_id", row_ids)

    def process(self, batch: pl.DataFrame) -> pl.DataFrame:
        return batch if REASON in batch.columns else keep(batch)
