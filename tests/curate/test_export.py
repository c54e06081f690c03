"""`distillery export`: the shards in the layouts LLaMA-Factory, TRL and plain JSON-lines readers expect."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest

from curate.errors import CurateError
from curate.export import export
from curate.stages.domain import Domain
from curate.stages.normalize import Normalize
from curate.stages.quality import Quality
from curate.stages.shard import Shard
from distill.cli import main
from tests.conftest import shared_file
from tests.curate.test_quality import run_pipeline


@pytest.fixture(scope="module")
def sharded(tmp_path_factory) -> Path:
    files = [str(shared_file("math/math500.jsonl")), str(shared_file("code/humaneval.jsonl"))]
    base = tmp_path_factory.mktemp("export")
    ws = run_pipeline(
        base,
        files,
        [Normalize(), Quality(), Domain(), Shard(system="Reason, then answer.", rows_per_shard=300)],
    )
    return ws.root


def shard_rows(ws: Path, domain: str, split: str) -> list[dict]:
    manifest = json.loads((ws / "shards" / "manifest.json").read_text())
    files = manifest["domains"][domain][split]["files"]
    return [r for f in files for r in pq.read_table(ws / "shards" / domain / f["file"]).to_pylist()]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_jsonl_layout(sharded, tmp_path):
    written = export(sharded, "jsonl", tmp_path, progress=False)
    assert {(w["domain"], w["split"]) for w in written} == {
        ("math", "train"),
        ("math", "val"),
        ("code", "train"),
        ("code", "val"),
    }
    for domain in ("math", "code"):
        for split in ("train", "val"):
            assert read_jsonl(tmp_path / domain / f"{split}.jsonl") == shard_rows(sharded, domain, split)


def test_trl_layout_loads_as_train_and_test(sharded, tmp_path):
    export(sharded, "trl", tmp_path, domains=["math"], progress=False)
    assert not (tmp_path / "code").exists()
    loaded = datasets.load_dataset(str(tmp_path / "math"))
    assert set(loaded) == {"train", "test"}, "TRL's scripts read the train and test splits by default"
    assert loaded["train"].num_rows == len(shard_rows(sharded, "math", "train"))
    assert loaded["test"].num_rows == len(shard_rows(sharded, "math", "val"))
    first = loaded["train"][0]["messages"]
    assert [m["role"] for m in first] == ["system", "user", "assistant"] and first[0][
        "content"
    ] == "Reason, then answer."


def test_llamafactory_layout_registers_every_file(sharded, tmp_path):
    export(sharded, "llamafactory", tmp_path, name="tiny", progress=False)
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert set(info) == {"tiny_math", "tiny_math_val", "tiny_code", "tiny_code_val"}
    for key, entry in info.items():
        assert entry["formatting"] == "sharegpt" and entry["columns"] == {"messages": "messages"}
        assert entry["tags"] == {
            "role_tag": "role",
            "content_tag": "content",
            "user_tag": "user",
            "assistant_tag": "assistant",
            "system_tag": "system",
        }
        rows = read_jsonl(tmp_path / entry["file_name"])
        domain, split = key.split("_")[1], "val" if key.endswith("_val") else "train"
        assert [r["messages"] for r in rows] == [r["messages"] for r in shard_rows(sharded, domain, split)]
        roles = {tuple(m["role"] for m in r["messages"]) for r in rows}
        assert roles == {("system", "user", "assistant")}, "system first, then alternating user/assistant"
    export(sharded, "llamafactory", tmp_path, name="other", domains=["code"], progress=False)
    merged = json.loads((tmp_path / "dataset_info.json").read_text())
    assert set(merged) == set(info) | {"other_code", "other_code_val"}, "existing registrations are kept"


def test_cli(sharded, tmp_path, capsys):
    assert main(["export", str(sharded), "--to", "jsonl", "--out", str(tmp_path / "out"), "--quiet"]) == 0
    printed = capsys.readouterr().out
    total = sum(len(read_jsonl(p)) for p in (tmp_path / "out").rglob("*.jsonl"))
    assert f"exported {total:,} rows" in printed and "math" in printed
    assert main(["export", str(tmp_path), "--to", "trl", "--out", str(tmp_path / "x")]) == 2
    assert "no shards" in capsys.readouterr().err
    with pytest.raises(CurateError, match="no shards for domain"):
        export(sharded, "jsonl", tmp_path / "y", domains=["science"], progress=False)
