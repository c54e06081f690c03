"""`export` and `merge` refuse to write into a folder holding something else unless --force; their
own earlier output is rewritten freely."""

from __future__ import annotations

import pytest

from distill.cli import main
from tests.reliability.helpers import make_corpus


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    from curate.pipeline import curate

    folder = tmp_path_factory.mktemp("export")
    curate(
        [str(make_corpus(folder / "corpus.jsonl", math_rows=20, code_rows=0))], folder / "ws", progress=False
    )
    return folder / "ws"


def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    [line] = [x for x in err.splitlines() if ": error:" in x]
    return line


@pytest.mark.parametrize("to", ["jsonl", "trl", "llamafactory"])
def test_export_refuses_a_foreign_folder_and_rewrites_its_own(workspace, tmp_path, capsys, to):
    out = tmp_path / "model"
    out.mkdir()
    (out / "config.json").write_text("{}")
    assert main(["export", str(workspace), "--to", to, "--out", str(out), "--quiet"]) == 2
    line = _error(capsys)
    assert "not empty and not a distillery export folder (holds config.json)" in line and "--force" in line
    assert sorted(p.name for p in out.iterdir()) == ["config.json"]

    assert main(["export", str(workspace), "--to", to, "--out", str(out), "--quiet", "--force"]) == 0
    assert main(["export", str(workspace), "--to", to, "--out", str(out), "--quiet"]) == 0  # its own
    assert (out / "config.json").read_text() == "{}"


def test_export_adds_to_a_llamafactory_data_folder(workspace, tmp_path):
    out = tmp_path / "data"
    out.mkdir()
    (out / "dataset_info.json").write_text('{"alpaca_en": {"file_name": "alpaca_en.json"}}')
    (out / "alpaca_en.json").write_text("[]")
    assert main(["export", str(workspace), "--to", "llamafactory", "--out", str(out), "--quiet"]) == 0
    assert "alpaca_en" in (out / "dataset_info.json").read_text()


def test_merge_refuses_a_foreign_folder_before_loading_anything(tmp_path, capsys):
    out = tmp_path / "student"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"weights")
    config = tmp_path / "merge.yaml"
    config.write_text("merge_method: linear\nmodels: [{model: nowhere}]\n")
    assert main(["merge", str(config), "--out", str(out)]) == 2
    line = _error(capsys)
    assert "not empty and not an earlier merge (holds model.safetensors)" in line and "--force" in line
    assert (out / "model.safetensors").read_bytes() == b"weights"
    # with --force it goes on to the checks (and fails on the missing model, still in one line)
    assert main(["merge", str(config), "--out", str(out), "--force"]) == 2
    assert "nowhere" in _error(capsys)
