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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from curate import ingest_fast
from curate.errors import CurateError, InputError, did_you_mean
from curate.formats import ADAPTERS, closest_formats, detect_format, remap
from curate.ingest_fast import LineBlock, convert_chunk, convert_chunk_spooled
from curate.readers import (
    DEFAULT_SPLIT,
    Chunk,
    Input,
    checksum,
    iter_chunks,
    other_split_files,
    sample_records,
)
from curate.stage import DETAIL, REASON, Stage, StageContext, keep, ordered_pool_map

# The workers' tables carry curate.stage's decision columns under the names ingest_fast gives them.
assert (ingest_fast.REASON, ingest_fast.DETAIL) == (REASON, DETAIL)


def line_blocks(inp: Input, chunk_bytes: int) -> Iterator[LineBlock]:
    """An uncompressed JSON-lines input as LineBlocks of about `chunk_bytes` each: each block is
    what follows the last one's cut plus `chunk_bytes` more, cut after its last newline. The bytes
    go into one reused buffer (no copy per block); the unfinished line is read again."""
    split, first, offset, carry = inp.file_split(), 1, 0, 0
    buffer = bytearray(chunk_bytes)
    with open(inp.path, "rb") as handle:
        while True:
            want = carry + chunk_bytes
            if len(buffer) < want:  # a line longer than a block: read on
                buffer = bytearray(want)
            handle.seek(offset)
            size = handle.readinto(memoryview(buffer)[:want])
            if size == carry:  # nothing after the unfinished line
                break
            cut = buffer.rfind(b"\n", 0, size) + 1
            carry = size - cut
            if cut:
                yield LineBlock(inp.path, split, first, offset, cut)
                first += buffer.count(b"\n", 0, cut)
                offset += cut
    if carry:
        yield LineBlock(inp.path, split, first, offset, carry)


def _chunks(inp: Input, chunk_bytes: int) -> Iterator[Chunk | LineBlock]:
    if inp.kind == "jsonl" and inp.compression is None:
        return line_blocks(inp, chunk_bytes)
    return iter_chunks(inp, chunk_bytes=chunk_bytes)


def _pooled_tables(jobs: Iterator[tuple], workers: int, spool: Path) -> Iterator[pa.Table]:
    """The tables of `jobs` converted by a pool of `workers`, in order, through spool files (read
    memory-mapped: half the CPU of reading them into memory)."""
    spool.mkdir(exist_ok=True)
    tasks = ((str(spool / f"{index:06d}.arrow"), job) for index, job in enumerate(jobs))
    try:
        for path in ordered_pool_map(convert_chunk_spooled, tasks, workers, ingest_fast.init_worker):
            with pa.memory_map(path) as source:  # no copy: the table's buffers are the file's pages
                table = pa.ipc.open_stream(source).read_all()
            os.remove(path)  # the pages stay mapped until the table is written and let go
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
    late_fingerprint = True  # the sha256 of the inputs is taken while they are read

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
        # Hashed in a thread (hashlib lets go of the GIL): the fingerprint is taken after the read
        # where nothing is committed yet (late_fingerprint), so the read does not wait for it.
        hashing = ThreadPoolExecutor(1, thread_name_prefix="ingest-sha256")
        self._checksums: dict[str, Future[str] | str] = {
            inp.path: hashing.submit(checksum, inp) for inp in self.inputs
        }
        hashing.shutdown(wait=False)  # the hashes go on; the thread ends with the last

    @property
    def checksums(self) -> dict[str, str]:
        """sha256 of every input (curate.readers.checksum), waiting for the hashing if it is not done."""
        return {path: c if isinstance(c, str) else c.result() for path, c in self._checksums.items()}

    def __getstate__(self) -> dict[str, Any]:
        """Picklable (the Ray engine ships the stage): the checksums, finished, not their futures."""
        return {**self.__dict__, "_checksums": self.checksums}

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
        them without a trip through Polars (curate.stage.to_arrow). The inputs' stats come last:
        their sha256 is hashed while they are read."""
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

    def process(self, batch: pl.DataFrame) -> pl.DataFrame:
        return batch if REASON in batch.columns else keep(batch)
