"""Streaming safetensors I/O: the sharded writer and the lazy reader."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from merge.errors import MergeError
from merge.tensors import INDEX_NAME, MemoryWriter, ModelReader, ShardedWriter


def _tensors() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {
        "a.weight": torch.randn(10, 6, generator=generator),
        "b.weight": torch.randn(7, 3, generator=generator).to(torch.bfloat16),
        "c.bias": torch.randn(5, generator=generator).to(torch.float16),
        "d.positions": torch.arange(12, dtype=torch.int64).reshape(3, 4),
        "e.scale": torch.tensor(2.5),
        "f.mask": torch.tensor([True, False, True]),
    }


def _write(out, tensors, max_shard_bytes, rows_per_chunk=3):
    writer = ShardedWriter(out, [(name, t.shape, t.dtype) for name, t in tensors.items()], max_shard_bytes)
    for name, tensor in tensors.items():
        if tensor.dim() == 0:
            writer.write(name, slice(0, 1), tensor)
            continue
        # Written in row chunks, last chunk first: offsets, not order, decide where bytes go.
        starts = list(range(0, tensor.shape[0], rows_per_chunk))[::-1]
        for start in starts:
            writer.write(name, slice(start, start + rows_per_chunk), tensor[start : start + rows_per_chunk])
    return writer.finalize()


def test_round_trip_through_safetensors_and_the_reader(tmp_path):
    tensors = _tensors()
    paths = _write(tmp_path, tensors, max_shard_bytes=10**9)
    assert [p.name for p in paths] == ["model-00001-of-00001.safetensors"]
    with safe_open(paths[0], framework="pt") as handle:  # the reference reader accepts the file
        for name, tensor in tensors.items():
            loaded = handle.get_tensor(name)
            assert loaded.dtype == tensor.dtype and torch.equal(loaded, tensor)
    reader = ModelReader(tmp_path)
    assert {name: meta.shape for name, meta in reader.metas.items()} == {
        n: tuple(t.shape) for n, t in tensors.items()
    }
    assert all(torch.equal(reader.read(name), tensor) for name, tensor in tensors.items())
    assert not list(tmp_path.glob(".*partial"))


def test_shards_follow_the_size_limit_and_the_index_maps_every_tensor(tmp_path):
    tensors = {f"layer.{i}.weight": torch.full((25, 10), float(i)) for i in range(5)}  # 1000 bytes each
    paths = _write(tmp_path, tensors, max_shard_bytes=2000)
    assert [p.name for p in paths] == [f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]
    index = json.loads((tmp_path / INDEX_NAME).read_text())
    assert index["metadata"]["total_size"] == 5000
    assert index["weight_map"]["layer.0.weight"] == "model-00001-of-00003.safetensors"
    assert index["weight_map"]["layer.4.weight"] == "model-00003-of-00003.safetensors"
    reader = ModelReader(tmp_path)
    assert set(reader.files[n].name for n in tensors) == {p.name for p in paths}
    assert all(torch.equal(reader.read(name), tensor) for name, tensor in tensors.items())


def test_a_rewrite_removes_stale_shards(tmp_path):
    tensors = {f"w{i}": torch.zeros(250) for i in range(4)}
    _write(tmp_path, tensors, max_shard_bytes=1000)
    assert len(list(tmp_path.glob("model-*.safetensors"))) == 4
    _write(tmp_path, tensors, max_shard_bytes=10**6)
    assert [p.name for p in tmp_path.glob("model-*.safetensors")] == ["model-00001-of-00001.safetensors"]


def test_incomplete_tensors_are_an_error_and_leave_nothing(tmp_path):
    writer = ShardedWriter(tmp_path, [("a", (4, 2), torch.float32)])
    writer.write("a", slice(0, 2), torch.zeros(2, 2))
    with pytest.raises(RuntimeError, match="incomplete"):
        writer.finalize()
    assert list(tmp_path.iterdir()) == []


def test_abort_removes_partial_shards(tmp_path):
    writer = ShardedWriter(tmp_path, [("a", (4,), torch.float32)])
    assert list(tmp_path.glob(".*.partial"))
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_memory_writer_fills_rows_and_scalars():
    writer = MemoryWriter([("a", (4, 2), torch.float32), ("s", (), torch.float32)])
    writer.write("a", slice(2, 4), torch.ones(2, 2))
    writer.write("a", slice(0, 2), torch.zeros(2, 2))
    writer.write("s", slice(0, 1), torch.tensor(3.0))
    assert torch.equal(writer.tensors["a"], torch.tensor([[0.0, 0], [0, 0], [1, 1], [1, 1]]))
    assert writer.tensors["s"].item() == 3.0


def test_reader_reads_unsharded_and_reports_problems(tmp_path):
    save_file({"x": torch.ones(2)}, tmp_path / "model.safetensors")
    assert torch.equal(ModelReader(tmp_path).read("x"), torch.ones(2))

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MergeError, match="no safetensors"):
        ModelReader(empty)
    (empty / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(MergeError, match="pickle"):
        ModelReader(empty)

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / INDEX_NAME).write_text(json.dumps({"weight_map": {"x": "model-00001-of-00002.safetensors"}}))
    with pytest.raises(MergeError, match="missing: model-00001-of-00002"):
        ModelReader(broken)

    twice = tmp_path / "twice"
    twice.mkdir()
    save_file({"x": torch.ones(2)}, twice / "a.safetensors")
    save_file({"x": torch.ones(2)}, twice / "b.safetensors")
    with pytest.raises(MergeError, match="tensor x is in both"):
        ModelReader(twice)
