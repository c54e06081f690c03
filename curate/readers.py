"""Reading inputs: local files (JSON lines, JSON arrays, Parquet, CSV; `.gz`/`.zst`), globs,
folders (of files, or written by `datasets.save_to_disk`) and hub dataset names.

Everything streams: JSON lines are read as raw line chunks that workers parse, other formats as
record batches, so a 5 GB file never sits in memory. Each item keeps its origin so a bad record
can be named precisely. The origin convention, 1-based everywhere:

    data.jsonl:3          line 3 of a JSON lines file (blank lines count, as in an editor)
    data.parquet#3        the 3rd record of a file read by records (JSON array, Parquet, CSV)
    ds_dir[test]#3        the 3rd record of split `test` of a save_to_disk DatasetDict or hub dataset

A `.json` file that holds JSON lines (what `Dataset.to_json` writes) is read as JSON lines. A
DatasetDict folder or a hub dataset gives only its `train` split unless told otherwise
(`DIR:SPLIT`, `org/name:SPLIT`, or the ingest option `split`; `all` reads every split), and so
does a named folder of files named by split (`train-00000-of-00001.parquet` beside
`test-00000-of-00001.parquet`); the split of every row is recorded.
"""

from __future__ import annotations

import csv
import glob
import gzip
import hashlib
import io
import os
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from curate.errors import InputError

TEXT_SUFFIXES = {".jsonl", ".json", ".ndjson", ".csv", ".tsv", ".parquet"}
HUB_NAME = re.compile(r"^(hf://)?[\w.-]+/[\w.-]+(:[\w.-]+)?$")
ALL_SPLITS = "all"
DEFAULT_SPLIT = "train"
# Hub exports name files by split: data/train-00000-of-00001.parquet, test.jsonl, ...
FILE_SPLIT = re.compile(r"^(train|test|validation|valid|val|dev)(?=[-_.]|$)", re.IGNORECASE)
KNOWN_EXTENSIONS = (*TEXT_SUFFIXES, ".gz", ".zst", ".txt", ".arrow", ".xlsx")


@dataclass
class Input:
    """One resolved input: a file, a save_to_disk folder or a hub dataset."""

    path: str
    kind: str  # jsonl, json, parquet, csv, tsv, arrow_dir, hub
    compression: str | None = None
    size: int = 0
    split: str | None = None  # the split asked for (`DIR:SPLIT`); None: the ingest default
    folder: str | None = None  # the folder this file was found in, when a folder was named

    @property
    def stem(self) -> str:
        if self.kind == "hub":
            return self.path
        name = Path(self.path).name
        for suffix in (".gz", ".zst", ".jsonl", ".ndjson", ".json", ".parquet", ".csv", ".tsv"):
            name = name.removesuffix(suffix)
        return name

    def file_split(self) -> str | None:
        """The split a file's name declares (`train-00000-of-00001.parquet`, `test.jsonl`), if any."""
        if self.kind in ("hub", "arrow_dir"):
            return None
        match = FILE_SPLIT.match(Path(self.path).name)
        return match.group(1).lower() if match else None


@dataclass
class Chunk:
    """A slice of one input: raw JSON lines (parsed by a worker) or already-parsed records.

    Line and record numbers are 1-based; `split` is the split the rows belong to, when known, and
    `label` what origins start with (the path, with `[split]` for a split of a folder or hub name)."""

    path: str
    lines: list[tuple[int, bytes]] = field(default_factory=list)
    records: list[tuple[int, Any]] = field(default_factory=list)
    split: str | None = None
    label: str = ""

    def line_origin(self, number: int) -> str:
        return f"{self.label or self.path}:{number}"

    def record_origin(self, number: int) -> str:
        return f"{self.label or self.path}#{number}"


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


def _looks_like_path(spec: str) -> bool:
    """A name that is meant as a local path, not a hub dataset: it has a file extension, starts like
    a path, or its first folder exists here."""
    name = spec.split(":")[0]
    if name.startswith((".", "/", "~")) or name.lower().endswith(KNOWN_EXTENSIONS):
        return True
    return "/" in name and Path(name.split("/")[0]).is_dir()


def _split_suffix(spec: str) -> tuple[str, str | None]:
    """`DIR:SPLIT` -> (DIR, SPLIT) when DIR exists and SPLIT is a plain name; else (spec, None)."""
    head, sep, tail = spec.rpartition(":")
    if sep and head and re.fullmatch(r"[\w.-]+", tail) and Path(head).exists() and not Path(spec).exists():
        return head, tail
    return spec, None


def _holds_json_lines(path: str, compression: str | None) -> bool:
    """A `.json` file whose first line is a whole JSON object and which has more lines after it."""
    with _open_binary(Input(path, "json", compression)) as handle:
        first = handle.readline()
        rest = handle.readline()
        while rest and not rest.strip():
            rest = handle.readline()
    if not first.strip().startswith(b"{") or not rest:
        return False
    try:
        return isinstance(orjson.loads(first), dict)
    except orjson.JSONDecodeError:
        return False


def resolve_inputs(specs: list[str]) -> list[Input]:
    """Expand globs and folders into inputs, in a stable (sorted) order; errors name the spec."""
    inputs: list[Input] = []
    for original in specs:
        spec, split = _split_suffix(original)
        if any(ch in spec for ch in "*?[") and not Path(spec).exists():
            matches = sorted(glob.glob(spec, recursive=True))
            if not matches:
                raise InputError(spec, "the pattern matches no file")
            inputs += resolve_inputs(matches)
            continue
        path = Path(spec)
        if path.is_dir():
            if _is_dataset_dir(path):
                inputs.append(Input(str(path), "arrow_dir", split=split))
                continue
            if split:
                raise InputError(
                    original, "a split can be chosen only for a save_to_disk folder or a hub name"
                )
            files = sorted(
                str(p)
                for p in path.rglob("*")
                if p.is_file() and any(s in p.name.lower() for s in TEXT_SUFFIXES)
            )
            if not files:
                raise InputError(spec, "the folder holds no readable data file")
            inputs += [replace(found, folder=found.folder or str(path)) for found in resolve_inputs(files)]
        elif path.is_file():
            if split:
                raise InputError(
                    original,
                    f"a file has no splits (:{split} names a split of a save_to_disk folder or a hub "
                    f"dataset); give the file as {spec}",
                )
            kind, compression = _kind_of(spec)
            size = path.stat().st_size
            if size == 0:
                raise InputError(spec, "the file is empty")
            if kind == "json" and _holds_json_lines(spec, compression):
                kind = "jsonl"
            inputs.append(Input(str(path), kind, compression, size))
        elif _looks_like_path(spec):
            name, colon, _ = spec.partition(":")
            where = f" (from {spec})" if colon and not Path(name).exists() else ""
            raise InputError(name if where else spec, f"no such file or folder{where}")
        elif HUB_NAME.match(spec):
            name, _, hub_split = spec.removeprefix("hf://").partition(":")
            inputs.append(Input(name, "hub", split=hub_split or None))
        else:
            raise InputError(spec, "no such file or folder (and not a hub dataset name such as org/name)")
    return inputs


def other_split_files(inputs: list[Input], split: str) -> list[Input]:
    """Files found in a named folder whose name declares another split than `split`, in a folder
    that also has `split` files (a hub export's data/train-*.parquet beside data/test-*.parquet)."""
    if split == ALL_SPLITS:
        return []
    with_split = {inp.folder for inp in inputs if inp.folder and inp.file_split() == split}
    return [inp for inp in inputs if inp.folder in with_split and inp.file_split() not in (None, split)]


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
    split = inp.file_split()
    with _open_binary(inp) as handle:
        chunk, size = Chunk(inp.path, split=split), 0
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            chunk.lines.append((number, raw.rstrip(b"\r\n")))
            size += len(raw)
            if size >= chunk_bytes:
                yield chunk
                chunk, size = Chunk(inp.path, split=split), 0
        if chunk.lines:
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


def _chosen_splits(inp: Input, available: list[str], default: str) -> list[str]:
    wanted = inp.split or default
    if wanted == ALL_SPLITS:
        return available
    if wanted not in available:
        raise InputError(
            inp.path,
            f"no split {wanted!r} (splits: {', '.join(available)}); "
            f"name one as {inp.path}:SPLIT, or read all with the ingest option split: all",
        )
    return [wanted]


def _arrow_dir_groups(inp: Input, default: str) -> Iterator[tuple[str | None, Iterator[dict]]]:
    import datasets

    loaded = datasets.load_from_disk(inp.path)
    if isinstance(loaded, datasets.DatasetDict):
        parts = [(name, loaded[name]) for name in _chosen_splits(inp, list(loaded), default)]
    else:
        parts = [(str(loaded.split) if loaded.split is not None else None, loaded)]
    for name, part in parts:
        yield name, (row for batch in part.iter(batch_size=1024) for row in _batch_rows(batch))


def _batch_rows(batch: dict[str, list]) -> Iterator[dict]:
    keys = list(batch)
    return (dict(zip(keys, values, strict=True)) for values in zip(*batch.values(), strict=True))


def _offline() -> bool:
    return any(
        os.environ.get(v, "").lower() in ("1", "true", "yes")
        for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )


def _cached(name: str) -> bool:
    from huggingface_hub import constants

    return (Path(constants.HF_HUB_CACHE) / f"datasets--{name.replace('/', '--')}").is_dir()


def check_hub_name(name: str) -> None:
    """Fail at once, in one line, for a hub name that does not exist or cannot be looked up (the hub
    client would retry for half a minute and print every retry). Offline (HF_HUB_OFFLINE=1) or with
    the dataset in the local hub cache, the loader is left to read the cache."""
    if _offline():
        return
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        HfApi().dataset_info(name, timeout=10)
    except GatedRepoError:
        raise InputError(
            name, "a gated hub dataset: accept its terms on the hub and log in (hf auth login)"
        ) from None
    except RepositoryNotFoundError:
        raise InputError(
            name, "no such file or folder, and no such hub dataset (if it is private: hf auth login)"
        ) from None
    except Exception as error:  # no network, DNS, a proxy: httpx and OS errors alike
        if _cached(name):
            return
        first = (str(error).splitlines() or [""])[0][:200]
        raise InputError(
            name,
            f"no such file or folder, and the hub cannot be reached to look for this dataset "
            f"({type(error).__name__}: {first}); give a local path, or set HF_HUB_OFFLINE=1 to read "
            "the hub cache",
        ) from None


def _hub_groups(inp: Input, default: str) -> Iterator[tuple[str | None, Iterator[dict]]]:
    import datasets

    check_hub_name(inp.path)
    split = inp.split or default
    try:
        if split == ALL_SPLITS:
            loaded = datasets.load_dataset(inp.path, streaming=True)
            for name in loaded:
                yield name, iter(loaded[name])
        else:
            yield split, iter(datasets.load_dataset(inp.path, split=split, streaming=True))
    except Exception as error:  # the hub client raises many types; the user needs one message
        first = (str(error).splitlines() or [""])[0][:300]
        raise InputError(inp.path, f"cannot load hub dataset ({type(error).__name__}: {first})") from error


def _record_groups(inp: Input, default_split: str) -> Iterator[tuple[str | None, Iterator[Any]]]:
    """(split, records) groups of an input read by records, in order."""
    if inp.kind == "arrow_dir":
        yield from _arrow_dir_groups(inp, default_split)
    elif inp.kind == "hub":
        yield from _hub_groups(inp, default_split)
    else:
        readers = {"json": _json_array_records, "parquet": _parquet_records, "csv": _csv_records}
        yield inp.file_split(), readers.get(inp.kind, _csv_records)(inp)


def iter_chunks(
    inp: Input, chunk_bytes: int = 8 << 20, chunk_rows: int = 2048, default_split: str = DEFAULT_SPLIT
) -> Iterator[Chunk]:
    """The input as a stream of chunks, in file order (split by split for DatasetDicts). A
    compressed file that is cut short or corrupt is one InputError naming it."""
    try:
        yield from _chunks(inp, chunk_bytes, chunk_rows, default_split)
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise InputError(
            inp.path, f"the gzip stream is cut short or corrupt ({error}); fetch the file again"
        ) from None
    except Exception as error:
        if type(error).__name__ != "ZstdError":
            raise
        raise InputError(
            inp.path, f"the zstd stream is cut short or corrupt ({error}); fetch the file again"
        ) from None


def _chunks(inp: Input, chunk_bytes: int, chunk_rows: int, default_split: str) -> Iterator[Chunk]:
    if inp.kind == "jsonl":
        yield from _json_line_chunks(inp, chunk_bytes)
        return
    for split, records in _record_groups(inp, default_split):
        label = f"{inp.path}[{split}]" if split and inp.kind in ("arrow_dir", "hub") else inp.path
        chunk = Chunk(inp.path, split=split, label=label)
        for number, record in enumerate(records, start=1):
            chunk.records.append((number, record))
            if len(chunk.records) >= chunk_rows:
                yield chunk
                chunk = Chunk(inp.path, split=split, label=label)
        if chunk.records:
            yield chunk


def sample_records(inp: Input, limit: int = 32, default_split: str = DEFAULT_SPLIT) -> list[dict]:
    """The first parsable records of an input, for format detection."""
    found: list[dict] = []
    for chunk in iter_chunks(inp, chunk_bytes=1 << 20, chunk_rows=limit, default_split=default_split):
        if chunk.lines:
            found += [rec for _, raw in chunk.lines if (rec := parse_line(raw)[0]) is not None]
        else:
            found += [rec for _, rec in chunk.records if isinstance(rec, dict)]
        if len(found) >= limit:
            break
    return found[:limit]
