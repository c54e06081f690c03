"""Reading inputs: local files (JSON lines, JSON arrays, Parquet, CSV; `.gz`/`.zst`), globs,
folders (of files, or written by `datasets.save_to_disk`) and hub dataset names.

Everything streams: JSON lines are read as raw line chunks that workers parse, other formats as
record batches, so a 5 GB file never sits in memory. Each item keeps its location (line number or
record index) so a bad record can be named precisely.
"""

from __future__ import annotations

import csv
import glob
import gzip
import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from curate.errors import InputError

TEXT_SUFFIXES = {".jsonl", ".json", ".ndjson", ".csv", ".tsv", ".parquet"}
HUB_NAME = re.compile(r"^(hf://)?[\w.-]+/[\w.-]+(:[\w.-]+)?$")


@dataclass
class Input:
    """One resolved input: a file, a save_to_disk folder or a hub dataset."""

    path: str
    kind: str  # jsonl, json, parquet, csv, tsv, arrow_dir, hub
    compression: str | None = None
    size: int = 0

    @property
    def stem(self) -> str:
        if self.kind == "hub":
            return self.path.removeprefix("hf://").split(":")[0]
        name = Path(self.path).name
        for suffix in (".gz", ".zst", ".jsonl", ".ndjson", ".json", ".parquet", ".csv", ".tsv"):
            name = name.removesuffix(suffix)
        return name


@dataclass
class Chunk:
    """A slice of one input: raw JSON lines (parsed by a worker) or already-parsed records."""

    path: str
    lines: list[tuple[int, bytes]] = field(default_factory=list)
    records: list[tuple[int, Any]] = field(default_factory=list)


def _kind_of(path: str) -> tuple[str, str | None]:
    name = path.lower()
    compression = None
    for ext, comp in ((".gz", "gzip"), (".zst", "zstd")):
        if name.endswith(ext):
            name, compression = name.removesuffix(ext), comp
    for suffix, kind in (
        (".jsonl", "jsonl"),
        (".ndjson", "jsonl"),
        (".json", "json"),
        (".parquet", "parquet"),
        (".csv", "csv"),
        (".tsv", "tsv"),
    ):
        if name.endswith(suffix):
            return kind, compression
    raise InputError(
        path, f"unknown file type; expected one of {', '.join(sorted(TEXT_SUFFIXES))} (optionally .gz/.zst)"
    )


def _is_dataset_dir(path: Path) -> bool:
    return any((path / name).exists() for name in ("dataset_info.json", "state.json", "dataset_dict.json"))


def resolve_inputs(specs: list[str]) -> list[Input]:
    """Expand globs and folders into inputs, in a stable (sorted) order; errors name the spec."""
    inputs: list[Input] = []
    for spec in specs:
        if any(ch in spec for ch in "*?["):
            matches = sorted(glob.glob(spec, recursive=True))
            if not matches:
                raise InputError(spec, "the pattern matches no file")
            inputs += resolve_inputs(matches)
            continue
        path = Path(spec)
        if path.is_dir():
            if _is_dataset_dir(path):
                inputs.append(Input(str(path), "arrow_dir"))
                continue
            files = sorted(
                str(p)
                for p in path.rglob("*")
                if p.is_file() and any(s in p.name.lower() for s in TEXT_SUFFIXES)
            )
            if not files:
                raise InputError(spec, "the folder holds no readable data file")
            inputs += resolve_inputs(files)
        elif path.is_file():
            kind, compression = _kind_of(spec)
            size = path.stat().st_size
            if size == 0:
                raise InputError(spec, "the file is empty")
            inputs.append(Input(str(path), kind, compression, size))
        elif HUB_NAME.match(spec):
            inputs.append(Input(spec, "hub"))
        else:
            raise InputError(spec, "no such file or folder (and not a hub dataset name such as org/name)")
    return inputs


def checksum(inp: Input) -> str:
    """sha256 of a file's bytes; for folders and hub names, of their description."""
    if inp.kind == "arrow_dir":
        digest = hashlib.sha256()
        for file in sorted(Path(inp.path).rglob("*")):
            if file.is_file():
                digest.update(
                    f"{file.relative_to(inp.path)}:{file.stat().st_size}:{file.stat().st_mtime_ns}".encode()
                )
        return digest.hexdigest()
    if inp.kind == "hub":
        return hashlib.sha256(inp.path.encode()).hexdigest()
    digest = hashlib.sha256()
    with open(inp.path, "rb") as handle:
        while block := handle.read(8 << 20):
            digest.update(block)
    return digest.hexdigest()


def _open_binary(inp: Input) -> io.BufferedIOBase:
    if inp.compression == "gzip":
        return gzip.open(inp.path, "rb")
    if inp.compression == "zstd":
        import zstandard

        return io.BufferedReader(
            zstandard.ZstdDecompressor().stream_reader(open(inp.path, "rb"), closefd=True)
        )
    return open(inp.path, "rb")


def parse_line(raw: bytes) -> tuple[dict | None, str | None, str]:
    """(record, error, text) of one JSON line; text is the raw line decoded for keeping in meta."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return None, f"invalid UTF-8 at byte {error.start}", raw.decode("utf-8", "backslashreplace")
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        return None, f"broken JSON: {error}", text
    if not isinstance(record, dict):
        return None, f"expected a JSON object, got {type(record).__name__}", text
    return record, None, text


def _json_line_chunks(inp: Input, chunk_bytes: int) -> Iterator[Chunk]:
    with _open_binary(inp) as handle:
        chunk, size = Chunk(inp.path), 0
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            chunk.lines.append((number, raw.rstrip(b"\r\n")))
            size += len(raw)
            if size >= chunk_bytes:
                yield chunk
                chunk, size = Chunk(inp.path), 0
        if chunk.lines:
            yield chunk


def _record_chunks(inp: Input, records: Iterator[Any], chunk_rows: int) -> Iterator[Chunk]:
    chunk = Chunk(inp.path)
    for index, record in enumerate(records):
        chunk.records.append((index, record))
        if len(chunk.records) >= chunk_rows:
            yield chunk
            chunk = Chunk(inp.path)
    if chunk.records:
        yield chunk


def _json_array_records(inp: Input) -> Iterator[Any]:
    with _open_binary(inp) as handle:
        data = handle.read()
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise InputError(inp.path, f"not valid JSON: {error}") from error
    if isinstance(parsed, dict):  # {"data": [...]} or {"rows": [...]}
        lists = [v for v in parsed.values() if isinstance(v, list)]
        parsed = lists[0] if len(lists) == 1 else [parsed]
    if not isinstance(parsed, list):
        raise InputError(inp.path, f"expected a JSON array of objects, got {type(parsed).__name__}")
    yield from parsed


def _parquet_records(inp: Input) -> Iterator[dict]:
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(inp.path).iter_batches(batch_size=2048):
        yield from batch.to_pylist()


def _csv_records(inp: Input) -> Iterator[dict]:
    with _open_binary(inp) as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
        try:
            yield from csv.DictReader(text, delimiter="\t" if inp.kind == "tsv" else ",")
        except UnicodeDecodeError as error:
            raise InputError(
                inp.path, f"invalid UTF-8 ({error.reason}); convert the file to UTF-8"
            ) from error


def _arrow_dir_records(inp: Input) -> Iterator[dict]:
    import datasets

    loaded = datasets.load_from_disk(inp.path)
    splits = loaded.values() if isinstance(loaded, datasets.DatasetDict) else [loaded]
    for split in splits:
        for batch in split.iter(batch_size=1024):
            keys = list(batch)
            yield from (dict(zip(keys, values, strict=True)) for values in zip(*batch.values(), strict=True))


def _hub_records(inp: Input) -> Iterator[dict]:
    import datasets

    name, _, split = inp.path.removeprefix("hf://").partition(":")
    try:
        yield from datasets.load_dataset(name, split=split or "train", streaming=True)
    except Exception as error:  # the hub client raises many types; the user needs one message
        raise InputError(inp.path, f"cannot load hub dataset ({type(error).__name__}: {error})") from error


def iter_chunks(inp: Input, chunk_bytes: int = 8 << 20, chunk_rows: int = 2048) -> Iterator[Chunk]:
    """The input as a stream of chunks, in file order."""
    if inp.kind == "jsonl":
        yield from _json_line_chunks(inp, chunk_bytes)
        return
    readers = {
        "json": _json_array_records,
        "parquet": _parquet_records,
        "csv": _csv_records,
        "tsv": _csv_records,
        "arrow_dir": _arrow_dir_records,
        "hub": _hub_records,
    }
    yield from _record_chunks(inp, readers[inp.kind](inp), chunk_rows)


def sample_records(inp: Input, limit: int = 32) -> list[dict]:
    """The first parsable records of an input, for format detection."""
    found: list[dict] = []
    for chunk in iter_chunks(inp, chunk_bytes=1 << 20, chunk_rows=limit):
        if chunk.lines:
            found += [rec for _, raw in chunk.lines if (rec := parse_line(raw)[0]) is not None]
        else:
            found += [rec for _, rec in chunk.records if isinstance(rec, dict)]
        if len(found) >= limit:
            break
    return found[:limit]
