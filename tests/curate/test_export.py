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


def test_hf_layout_is_a_dataset_dict_per_domain_with_train_and_validation(sharded, tmp_path):
    written = export(sharded, "hf", tmp_path, progress=False)
    assert {(w["domain"], w["split"]) for w in written} == {
        (d, s) for d in ("math", "code") for s in ("train", "validation")
    }
    for domain in ("math", "code"):
        loaded = datasets.load_from_disk(str(tmp_path / domain))
        assert isinstance(loaded, datasets.DatasetDict) and set(loaded) == {"train", "validation"}
        assert loaded["train"].to_list() == shard_rows(sharded, domain, "train")
        assert loaded["validation"].to_list() == shard_rows(sharded, domain, "val")
    assert not (tmp_path / ".hf-cache").exists(), "the Arrow cache is removed once saved"
    export(sharded, "hf", tmp_path, domains=["math"], progress=False)  # an earlier export is replaced
    assert datasets.load_from_disk(str(tmp_path / "math"))["train"].num_rows == len(
        shard_rows(sharded, "math", "train")
    )


def test_hf_push_without_a_token_says_so_and_keeps_the_saved_data(sharded, tmp_path, monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(CurateError, match="not pushed, no Hugging Face token.*saved in"):
        export(sharded, "hf", tmp_path, domains=["code"], progress=False, push_to_hub="me/traces")
    assert datasets.load_from_disk(str(tmp_path / "code"))["train"].num_rows > 0
    with pytest.raises(CurateError, match="--push-to-hub needs --to hf"):
        export(sharded, "jsonl", tmp_path / "j", progress=False, push_to_hub="me/traces")


def test_prompt_completion_layout_splits_at_the_last_assistant_turn(sharded, tmp_path):
    assert main(["export", str(sharded), "--to", "prompt-completion", "--out", str(tmp_path), "--quiet"]) == 0
    for domain in ("math", "code"):
        for split in ("train", "val"):
            rows = read_jsonl(tmp_path / domain / f"{split}.jsonl")
            shards = shard_rows(sharded, domain, split)
            assert len(rows) == len(shards) > 0
            for row, shard in zip(rows, shards, strict=True):
                assert row["prompt"] + row["completion"] == shard["messages"]
                assert [m["role"] for m in row["completion"]] == ["assistant"]
                assert row["prompt"][-1]["role"] == "user" and row["id"] == shard["id"]


def test_domains_are_space_or_comma_separated(sharded, tmp_path):
    assert (
        main(
            ["export", str(sharded), "--to", "jsonl", "--out", str(tmp_path / "a"), "--domains", "math,code"]
        )
        == 0
    )
    assert (
        main(
            [
                "export",
                str(sharded),
                "--to",
                "jsonl",
                "--out",
                str(tmp_path / "b"),
                "--domains",
                "math",
                "code",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in (tmp_path / "a").iterdir() if p.is_dir()) == ["code", "math"]
    assert sorted(p.name for p in (tmp_path / "b").iterdir() if p.is_dir()) == ["code", "math"]
