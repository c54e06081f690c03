"""OS errors end a command with one line naming the path and what to do, and a rerun after the
fix resumes: a disk that fills up mid-stage (a small tmpfs), a filesystem that turns read-only."""

from __future__ import annotations

import errno
import json
import subprocess
from pathlib import Path

import pytest

from curate.errors import CurateError, os_error_message, user_error_from
from curate.workspace import Workspace
from tests.reliability.helpers import assert_same_parquet, make_corpus


def _mount(path: Path, options: str) -> None:
    path.mkdir(exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {result.stderr.decode().strip()}")


def _remount(path: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True)


@pytest.fixture
def disk(tmp_path):
    path = tmp_path / "disk"
    _mount(path, "size=256k")
    yield path
    subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    from distill.cli import main

    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> subprocess.CompletedProcess:
        code = main(["curate", *args, "--quiet"])
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    return run


def _committed_stages_are_whole(ws: Path) -> list[str]:
    workspace = Workspace(ws)
    for stage in workspace.committed():
        info = stage.info()
        assert sum(_rows(p) for p in stage.parts()) == info["rows_out"], stage.label
    return [s.name for s in workspace.committed()]


def _rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def test_a_full_disk_mid_run_is_one_line_and_the_rerun_on_free_space_resumes(tmp_path, disk, cli):
    corpus = make_corpus(tmp_path / "corpus.jsonl")
    reference = cli(str(corpus), "--out", "reference")
    assert reference.returncode == 0, reference.stderr

    full = cli(str(corpus), "--out", str(disk / "ws"))
    assert full.returncode == 2
    assert "Traceback" not in full.stderr
    [line] = [x for x in full.stderr.splitlines() if x.startswith("distillery curate: error:")]
    assert f"{disk / 'ws'}" in line and "no space left on the device" in line and "rerun" in line
    committed = _committed_stages_are_whole(disk / "ws")
    assert "shard" not in committed  # it did stop part-way

    _remount(disk, "size=64m")
    resumed = cli(str(corpus), "--out", str(disk / "ws"))
    assert resumed.returncode == 0, resumed.stderr
    reused = [line.split()[1] for line in resumed.stdout.splitlines() if line.endswith("reused")]
    assert reused == committed  # what was committed before the disk filled up is kept
    assert_same_parquet(tmp_path / "reference", disk / "ws")


def test_a_read_only_filesystem_is_one_line_and_a_rerun_after_remount_works(tmp_path, disk, cli):
    _remount(disk, "size=64m")
    corpus = make_corpus(tmp_path / "corpus.jsonl", math_rows=20, code_rows=0)
    assert cli(str(corpus), "--out", str(disk / "ws"), "--until", "normalize").returncode == 0
    _remount(disk, "ro")
    failed = cli(str(corpus), "--out", str(disk / "ws"), "--until", "exact_dedup")
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert "read-only: choose a writable folder" in failed.stderr
    _remount(disk, "rw")
    done = cli(str(corpus), "--out", str(disk / "ws"), "--until", "exact_dedup")
    assert done.returncode == 0, done.stderr
    assert json.loads((disk / "ws" / "manifest.json").read_text())["stages"][-1]["name"] == "exact_dedup"


def test_a_vanished_input_is_one_line(tmp_path, cli):
    corpus = make_corpus(tmp_path / "corpus.jsonl", math_rows=5, code_rows=0)
    link = tmp_path / "gone.jsonl"
    link.symlink_to(corpus)
    corpus.unlink()  # a dangling link: the file vanished after it was named
    result = cli(str(link), "--out", "ws")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "gone.jsonl" in result.stderr


@pytest.mark.parametrize(
    ("code", "advice"),
    [
        (errno.ENOSPC, "no space left on the device: free space"),
        (errno.EACCES, "permission denied: fix the folder's permissions"),
        (errno.EROFS, "read-only"),
        (errno.ENOENT, "the file vanished while the command ran"),
    ],
)
def test_each_os_error_names_the_path_and_what_to_do(code, advice):
    message = os_error_message(OSError(code, "x", "/data/ws/stages/part-00000.parquet"))
    assert message.startswith("/data/ws/stages/part-00000.parquet: ") and advice in message
    assert "\n" not in message
    # pyarrow's writer says neither errno attribute nor path: the workspace stands in for the path
    wrapped = user_error_from(OSError(code, f"Error writing bytes to file. Detail: [errno {code}] x"), "ws")
    assert isinstance(wrapped, CurateError) and str(wrapped).startswith("ws: ") and advice in str(wrapped)


def test_a_bug_is_not_turned_into_a_user_error():
    assert user_error_from(KeyError("column")) is None
