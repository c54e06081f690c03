"""A workspace is never written by two runs at once, never put into a folder holding something
else, and a rerun says which stages it redoes and why."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from curate.errors import CurateError, WorkspaceBusy
from curate.pipeline import curate
from curate.workspace import LOCK, locked
from tests.reliability.helpers import REPO, assert_same_parquet, make_corpus, run_curate, start_curate

ONLY_INGEST = ("--until", "normalize")


@pytest.fixture
def corpus(tmp_path):
    return make_corpus(tmp_path / "corpus.jsonl", math_rows=30, code_rows=0)


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """`distillery curate ARGS --quiet` in this process, in tmp_path, as a CompletedProcess."""
    from distill.cli import main

    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> subprocess.CompletedProcess:
        code = main(["curate", *args, "--quiet"])
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    return run


def _one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("distillery curate: error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_second_run_is_refused_with_one_line_while_the_first_holds_the_lock(tmp_path, corpus):
    with locked(tmp_path / "ws"):  # the lock of a run in another process: a second run is refused
        result = run_curate(str(corpus), "--out", "ws", *ONLY_INGEST, cwd=tmp_path)
    line = _one_line_error(result)
    assert "in use by another run" in line and f"pid {os.getpid()} on {socket.gethostname()}" in line
    assert not (tmp_path / "ws" / "stages").exists()  # the refused run touched nothing
    done = run_curate(str(corpus), "--out", "ws", *ONLY_INGEST, cwd=tmp_path)
    assert done.returncode == 0, done.stderr


def test_the_lock_is_refused_in_process_too(tmp_path):
    with locked(tmp_path), pytest.raises(WorkspaceBusy):
        # a second descriptor on the same file: flock refuses it like another process
        with locked(tmp_path):
            pass


def test_a_stale_lock_of_a_dead_run_is_taken_over_and_said(tmp_path, corpus, cli):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / LOCK).write_text(
        json.dumps(
            {"pid": dead.pid, "host": "elsewhere", "started": "x", "command": "curate", "running": True}
        )
    )
    (tmp_path / "ws" / "manifest.json").write_text(json.dumps({"format_version": 1, "stages": []}))
    result = cli(str(corpus), "--out", "ws", *ONLY_INGEST)
    assert result.returncode == 0, result.stderr
    assert f"a previous run (pid {dead.pid} on elsewhere" in result.stderr
    assert json.loads((tmp_path / "ws" / LOCK).read_text())["running"] is False


def test_concurrent_runs_on_one_workspace_end_in_one_intact_workspace(tmp_path, corpus):
    reference = tmp_path / "ref"
    reference.mkdir()
    assert run_curate(str(corpus), "--out", str(reference / "ws"), *ONLY_INGEST, cwd=tmp_path).returncode == 0
    runs = [start_curate(str(corpus), "--out", "ws", *ONLY_INGEST, cwd=tmp_path) for _ in range(3)]
    outcomes = [(run.wait(), run.communicate()[1]) for run in runs]
    for code, stderr in outcomes:
        assert "Traceback" not in stderr
        assert code == 0 or (code == 2 and "in use by another run" in stderr), stderr
    assert any(code == 0 for code, _ in outcomes)
    assert_same_parquet(reference / "ws", tmp_path / "ws")


def test_a_folder_holding_other_things_is_refused_unless_forced(tmp_path, corpus, cli):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    line = _one_line_error(cli(str(corpus), "--out", "model", *ONLY_INGEST))
    assert "not empty and not a distillery workspace (holds config.json)" in line and "--force" in line
    assert sorted(p.name for p in model.iterdir()) == ["config.json"]
    forced = cli(str(corpus), "--out", "model", *ONLY_INGEST, "--force")
    assert forced.returncode == 0, forced.stderr
    assert (model / "config.json").exists() and (model / "manifest.json").exists()
    again = cli(str(corpus), "--out", "model", *ONLY_INGEST)  # now a workspace
    assert again.returncode == 0, again.stderr


def test_an_empty_folder_is_fine(tmp_path, corpus):
    (tmp_path / "empty").mkdir()
    curate([str(corpus)], tmp_path / "empty", until="ingest", progress=False)
    with pytest.raises(CurateError, match="not a folder"):
        curate([str(corpus)], corpus, until="ingest", progress=False)


def test_a_rerun_says_which_stages_it_redoes_and_why(tmp_path, corpus, cli):
    args = (str(corpus), "--out", "ws", "--until", "near_dedup")  # a stage after the changed one
    assert cli(*args).returncode == 0
    config = tmp_path / "c.yaml"
    config.write_text("stages:\n  exact_dedup: {key: problem+response}\n")
    changed = cli(*args, "--config", str(config))
    assert changed.returncode == 0, changed.stderr
    assert (
        'redo 02 exact_dedup (and so the stages after it): options changed: key "problem" -> "problem+response"'
        in changed.stderr
    )
    assert "redo 00" not in changed.stderr and "redo 01" not in changed.stderr
    # near_dedup read the new exact_dedup rows, not the stale ones of the first run
    manifest = json.loads((tmp_path / "ws" / "manifest.json").read_text())
    assert manifest["stages"][3]["rows_in"] == manifest["stages"][2]["rows_out"] > 0

    with corpus.open("a") as handle:
        handle.write(
            json.dumps({"prompt": "What is 1 + 1?", "response": "\\boxed{2}", "reference": "2"}) + "\n"
        )
    grown = cli(*args, "--config", str(config))
    assert grown.returncode == 0, grown.stderr
    assert f"redo 00 ingest (and so the stages after it): inputs changed: {corpus} (content)" in grown.stderr
    assert "reused" not in grown.stdout


def test_no_stage_is_reused_by_a_checkout_whose_code_differs(tmp_path):
    """The fingerprint is computed from the code, so a copy in another folder agrees with the
    checkout (paths are relative) while an edited copy does not (test_upgrade.py runs it)."""
    from curate.codehash import code_hash, module_closure

    files = {p.relative_to(REPO).as_posix() for p in module_closure("curate.stages.verify")}
    assert {"curate/stages/verify.py", "curate/stage.py", "curate/verify/code/sandbox.py"} <= files
    assert "curate/verify/code/inside/runner.py" in files  # shipped to the sandbox, never imported here
    assert "curate/stages/shard.py" not in files
    assert code_hash("curate.stages.verify") != code_hash("curate.stages.shard")


def test_a_stage_defined_outside_the_package_is_fingerprinted_by_its_own_file_too():
    from curate.codehash import module_closure

    files = module_closure(__name__)  # this test module: outside `curate`, imported by pytest
    assert Path(__file__).resolve() in {p.resolve() for p in files}
    assert REPO / "curate" / "pipeline.py" in files  # and the project modules it imports
