"""Input names that go wrong say so in one line, at once; every split of a dataset can be read
(`DIR:all`, `--split all`, and the hub reader's `all`), all without network."""

from __future__ import annotations

import http.server
import json
import threading

import datasets
import pytest
from huggingface_hub import constants

import sql
from curate.errors import InputError
from curate.pipeline import curate
from curate.readers import Input, iter_chunks
from distill.cli import main

ROW = {"problem": "What is 1+1?", "answer": "2"}


def write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def one_line_error(capsys, argv) -> str:
    assert main(argv) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_split_suffix_mistakes_are_one_clear_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "x.jsonl", [ROW])
    out = ["--out", str(tmp_path / "ws"), "--quiet", "--until", "ingest"]
    assert one_line_error(capsys, ["curate", "x.jsonl:test", *out]) == (
        "distillery curate: error: x.jsonl:test: a file has no splits (:test names a split of a "
        "save_to_disk folder or a hub dataset); give the file as x.jsonl"
    )
    assert one_line_error(capsys, ["curate", "nope.jsonl:test", *out]).endswith(
        "nope.jsonl: no such file or folder (from nope.jsonl:test)"
    )


@pytest.fixture()
def hub(monkeypatch, tmp_path):
    """The hub client pointed at a local server that knows no dataset (or at a closed port)."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(404)
            self.send_header("X-Error-Code", "RepoNotFound")
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error": "Repository not found"}')

        do_HEAD = do_GET

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.setattr(constants, "ENDPOINT", url)
    yield monkeypatch
    server.shutdown()
    server.server_close()


def test_a_hub_name_that_does_not_exist_is_one_line_at_once(hub, tmp_path, capsys):
    out = ["--out", str(tmp_path / "ws"), "--quiet", "--until", "ingest"]
    err = one_line_error(capsys, ["curate", "org/no-such-set:test", *out])
    assert err.endswith(
        "org/no-such-set: no such file or folder, and no such hub dataset (if it is private: hf auth login)"
    )


def test_an_unreachable_hub_is_one_line_with_what_to_do(hub, tmp_path, capsys):
    hub.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens: connection refused
    out = ["--out", str(tmp_path / "ws"), "--quiet", "--until", "ingest"]
    err = one_line_error(capsys, ["curate", "org/no-such-set", *out])
    assert "org/no-such-set: no such file or folder, and the hub cannot be reached" in err
    assert err.endswith("give a local path, or set HF_HUB_OFFLINE=1 to read the hub cache")


def splits_of(ws) -> list[tuple[str, int]]:
    query = "select dataset_split, count(*) from traces group by 1 order by 1"
    return sql.connect(ws).execute(query).fetchall()


def test_dir_all_and_split_all_read_every_split(tmp_path):
    folder = tmp_path / "dd"
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_list([ROW, {**ROW, "problem": "What is 2+2?", "answer": "4"}]),
            "test": datasets.Dataset.from_list([{**ROW, "problem": "Held out?"}]),
        }
    ).save_to_disk(str(folder))
    curate([f"{folder}:all"], tmp_path / "ws1", progress=False, until="ingest")
    assert splits_of(tmp_path / "ws1") == [("test", 1), ("train", 2)]
    files = tmp_path / "files"
    write_jsonl(files / "train-00000-of-00001.jsonl", [ROW])
    write_jsonl(files / "validation-00000-of-00001.jsonl", [{**ROW, "problem": "Val?"}])
    assert (
        main(
            [
                "curate",
                str(files),
                "--out",
                str(tmp_path / "ws2"),
                "--quiet",
                "--split",
                "all",
                "--until",
                "ingest",
            ]
        )
        == 0
    )
    assert splits_of(tmp_path / "ws2") == [("train", 1), ("validation", 1)]


def test_the_hub_reader_reads_every_split_of_a_local_hub_layout_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = tmp_path / "org-name"
    write_jsonl(repo / "data" / "train-00000-of-00001.jsonl", [ROW, {**ROW, "problem": "What is 2+2?"}])
    write_jsonl(repo / "data" / "test-00000-of-00001.jsonl", [{**ROW, "problem": "Held out?"}])
    chunks = list(iter_chunks(Input(str(repo), "hub", split="all")))
    got = sorted((c.split, c.label, [n for n, _ in c.records]) for c in chunks)
    assert got == [("test", f"{repo}[test]", [1]), ("train", f"{repo}[train]", [1, 2])]
    (train,) = list(iter_chunks(Input(str(repo), "hub")))
    assert train.split == "train" and len(train.records) == 2, "train only by default"
    with pytest.raises(InputError, match="cannot load hub dataset"):
        list(iter_chunks(Input(str(repo), "hub", split="nosuch")))
