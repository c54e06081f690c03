"""Streaming safetensors I/O: a lazy reader for (sharded) checkpoints and a sharded writer.

Reading opens the shard with safetensors' `safe_open` for each tensor and closes it right away:
the returned tensor is backed by the memory-mapped file, and a handle kept open would keep every
page read so far resident, so a long merge would grow to the size of the models.

Writing lays every shard out before the first tensor is produced (names, shapes and dtypes are
known from the plan), writes each header up front, and then writes tensor bytes straight to
their offsets, chunk by chunk. Nothing is buffered, so memory does not grow with shard size.
Shards are written under temporary names and renamed, with the index written last.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open

from .errors import MergeError

INDEX_NAME = "model.safetensors.index.json"
DEFAULT_SHARD_BYTES = 5 * 1000**3
_SHARD_NAME = re.compile(r"^model-\d{5}-of-\d{5}\.safetensors$")

DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F8_E4M3": torch.float8_e4m3fn,
    "F8_E5M2": torch.float8_e5m2,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
DTYPE_CODES = {dtype: code for code, dtype in DTYPES.items()}


@dataclass(frozen=True)
class TensorMeta:
    """What the header says about one tensor."""

    shape: tuple[int, ...]
    dtype: torch.dtype


class ModelReader:
    """Lazy access to the tensors of a safetensors checkpoint directory (sharded or not)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.files: dict[str, Path] = {}
        self.metas: dict[str, TensorMeta] = {}
        for file in self._shard_files():
            with safe_open(file, framework="pt") as handle:
                for name in handle.keys():
                    if name in self.files:
                        raise MergeError(
                            f"{self.path}: tensor {name} is in both {self.files[name].name} and {file.name}"
                        )
                    view = handle.get_slice(name)
                    code = view.get_dtype()
                    if code not in DTYPES:
                        raise MergeError(f"{file}: tensor {name} has dtype {code}, which cannot be merged")
                    self.files[name] = file
                    self.metas[name] = TensorMeta(tuple(view.get_shape()), DTYPES[code])

    def _shard_files(self) -> list[Path]:
        index = self.path / INDEX_NAME
        if index.is_file():
            try:
                weight_map = json.loads(index.read_text())["weight_map"]
            except (ValueError, KeyError) as error:
                raise MergeError(f"{index}: not a safetensors index ({error})") from None
            files = sorted({self.path / name for name in weight_map.values()})
            missing = [file.name for file in files if not file.is_file()]
            if missing:
                raise MergeError(f"{index} lists shards that are missing: {', '.join(missing)}")
            return files
        files = sorted(file for file in self.path.glob("*.safetensors") if not file.name.startswith("."))
        if files:
            return files
        if list(self.path.glob("*.bin")) or list(self.path.glob("*.pt")):
            raise MergeError(
                f"{self.path} has only PyTorch pickle weights; save it with safetensors first "
                "(model.save_pretrained(dir, safe_serialization=True))"
            )
        raise MergeError(f"{self.path} has no safetensors weights")

    def read(self, name: str) -> torch.Tensor:
        """One tensor, backed by the mapped file (release it to release its pages)."""
        with safe_open(self.files[name], framework="pt") as handle:
            return handle.get_tensor(name)


class ShardedWriter:
    """Writes a known list of tensors into model-0000N-of-0000M.safetensors files plus an index."""

    def __init__(
        self,
        out_dir: str | Path,
        tensors: Sequence[tuple[str, Sequence[int], torch.dtype]],
        max_shard_bytes: int = DEFAULT_SHARD_BYTES,
    ):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        shards: list[list[tuple[str, tuple[int, ...], torch.dtype, int]]] = [[]]
        size = 0
        for name, shape, dtype in tensors:
            size_bytes = nbytes(shape, dtype)
            if shards[-1] and size + size_bytes > max_shard_bytes:
                shards.append([])
                size = 0
            shards[-1].append((name, tuple(shape), dtype, size_bytes))
            size += size_bytes
        count = len(shards)
        self.names = [f"model-{i + 1:05d}-of-{count:05d}.safetensors" for i in range(count)]
        # name -> (shard index, absolute byte offset, byte size, bytes per row)
        self.slots: dict[str, tuple[int, int, int, int]] = {}
        self.written: dict[str, int] = {}
        self.total_bytes = 0
        self.fds: list[int] = []
        try:
            for shard_index, shard in enumerate(shards):
                self.fds.append(self._start_shard(shard_index, shard))
        except BaseException:
            self.abort()
            raise

    def _partial(self, shard_index: int) -> Path:
        return self.out_dir / f".{self.names[shard_index]}.partial"

    def _start_shard(self, shard_index: int, shard: list) -> int:
        header: dict[str, object] = {"__metadata__": {"format": "pt"}}
        offset = 0
        for name, shape, dtype, size in shard:
            header[name] = {
                "dtype": DTYPE_CODES[dtype],
                "shape": list(shape),
                "data_offsets": [offset, offset + size],
            }
            offset += size
        blob = json.dumps(header, separators=(",", ":")).encode()
        blob += b" " * (-len(blob) % 8)  # the data section starts 8-byte aligned
        start = 8 + len(blob)
        for name, shape, _, size in shard:
            begin = header[name]["data_offsets"][0]  # type: ignore[index]
            row_bytes = size // shape[0] if shape and shape[0] else size
            self.slots[name] = (shard_index, start + begin, size, row_bytes)
            self.written[name] = 0
        self.total_bytes += offset
        fd = os.open(self._partial(shard_index), os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o644)
        _write_all(fd, len(blob).to_bytes(8, "little") + blob, 0)
        os.ftruncate(fd, start + offset)
        return fd

    def write(self, name: str, rows: slice, values: torch.Tensor) -> None:
        """Write `values` as rows `rows` of tensor `name` (already in its output dtype)."""
        shard_index, offset, size, row_bytes = self.slots[name]
        data = values.detach().contiguous().reshape(-1).view(torch.uint8).numpy()
        position = offset + (rows.start or 0) * row_bytes
        if position + data.nbytes > offset + size:
            raise ValueError(f"rows {rows} of {name} fall outside the tensor")
        _write_all(self.fds[shard_index], memoryview(data), position)
        self.written[name] += data.nbytes

    def finalize(self) -> list[Path]:
        """Check every tensor is complete, move shards into place and write the index."""
        short = [name for name, (_, _, size, _) in self.slots.items() if self.written[name] != size]
        if short:
            self.abort()
            raise RuntimeError(f"merge wrote incomplete tensors: {short[:5]}")
        for fd in self.fds:
            os.fsync(fd)
            os.close(fd)
        self.fds = []
        paths = []
        for shard_index, name in enumerate(self.names):
            os.replace(self._partial(shard_index), self.out_dir / name)
            paths.append(self.out_dir / name)
        for stale in self.out_dir.iterdir():
            # Shards of an earlier merge into the same folder would confuse loaders that glob.
            if _SHARD_NAME.match(stale.name) and stale.name not in self.names:
                stale.unlink()
        weight_map = {name: self.names[slot[0]] for name, slot in self.slots.items()}
        index = {"metadata": {"total_size": self.total_bytes}, "weight_map": weight_map}
        temporary = self.out_dir / f".{INDEX_NAME}.partial"
        temporary.write_text(json.dumps(index, indent=2) + "\n")
        os.replace(temporary, self.out_dir / INDEX_NAME)
        single = self.out_dir / "model.safetensors"
        if single.exists():
            single.unlink()  # a leftover single-file checkpoint would shadow the index
        return paths

    def abort(self) -> None:
        """Close and remove the partial shards."""
        for fd in self.fds:
            os.close(fd)
        self.fds = []
        for shard_index in range(len(self.names)):
            self._partial(shard_index).unlink(missing_ok=True)


class MemoryWriter:
    """The in-memory counterpart of ShardedWriter: fills preallocated tensors."""

    def __init__(self, tensors: Sequence[tuple[str, Sequence[int], torch.dtype]]):
        self.tensors = {name: torch.empty(tuple(shape), dtype=dtype) for name, shape, dtype in tensors}

    def write(self, name: str, rows: slice, values: torch.Tensor) -> None:
        target = self.tensors[name]
        if target.dim() == 0:
            target.copy_(values.reshape(()))
        else:
            target[rows] = values


def nbytes(shape: Sequence[int], dtype: torch.dtype) -> int:
    """Bytes of a tensor of this shape and dtype."""
    count = 1
    for size in shape:
        count *= size
    return count * dtype.itemsize


def _write_all(fd: int, data: bytes | memoryview, position: int) -> None:
    view = memoryview(data).cast("B")
    while view:
        written = os.pwrite(fd, view, position)
        view = view[written:]
        position += written
