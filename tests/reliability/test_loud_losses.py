"""No silent losses (issue 15): a stage that drops (nearly) all of an input's rows for a reason an
option controls warns, naming input, reason and option; a run whose rows all vanish ends saying
so, with the stage table, instead of writing empty shards with exit code 0."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import write_jsonl
from tests.reliability.helpers import assert_same_parquet, make_corpus


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    from distill.cli import main

    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> subprocess.CompletedProcess:
        code = main(["curate", *args, "--quiet"])
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    return run


def test_every_row_malformed_ends_with_n_of_n_and_the_stage_table(tmp_path, cli):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"prompt": "a", "response": 3}\n{"prompt": 1}\n{"prompt": "b", "resp\n' + "[1]\n")
    result = cli(str(path), "--out", "ws", "--format", "prompt_response")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "00 ingest" in result.stdout and "malformed 4" in result.stdout  # the stage table
    [line] = [x for x in result.stderr.splitlines() if x.startswith("distillery curate: error:")]
    assert "stage 00 ingest: 4 of 4 rows were malformed; top reasons: " in line
    assert "broken JSON" in line and "--map" in line
    assert "no input rows (did ingest produce any?)" not in result.stderr
    # the ledger is there to inspect: every row rejected with its reason
    manifest = json.loads((tmp_path / "ws" / "manifest.json").read_text())
    assert [s["name"] for s in manifest["stages"]] == ["ingest"]
    assert (tmp_path / "ws" / "rejected" / "00_ingest.parquet").exists()


def test_an_input_dropped_for_a_configurable_reason_is_named_with_its_option(tmp_path, cli):
    make_corpus(tmp_path / "checked.jsonl", math_rows=20, code_rows=0)
    write_jsonl(
        tmp_path / "unchecked.jsonl",
        [
            {"prompt": f"Tell me a story {i}.", "response": f"<think>plot</think> Once {i}."}
            for i in range(10)
        ],
    )
    config = tmp_path / "c.yaml"
    config.write_text("stages:\n  verify: {require_reference: true}\n")
    result = cli("checked.jsonl", "unchecked.jsonl", "--out", "ws", "--config", str(config))
    assert result.returncode == 0, result.stderr
    warnings = [x for x in result.stderr.splitlines() if x.startswith("warning:")]
    assert len(warnings) == 1, result.stderr
    assert "verify dropped 10 of 10 rows of input 'unchecked' (100%) as `no_reference`" in warnings[0]
    assert "stages: verify: {require_reference: false}" in warnings[0]


def test_a_stage_that_keeps_nothing_stops_the_run_before_empty_shards(tmp_path, cli):
    write_jsonl(
        tmp_path / "wrong.jsonl",
        [
            {
                "prompt": f"What is {i} + 1?",
                "response": f"<think>hm</think> \\boxed{{{i + 5}}}",
                "reference": str(i + 1),
            }
            for i in range(8)
        ],
    )
    result = cli("wrong.jsonl", "--out", "ws")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "stage 05 verify kept none of its 8 rows (fail 8); nothing would reach the shards" in result.stderr
    assert "warning: verify dropped 8 of 8 rows of input 'wrong' (100%) as `fail`" in result.stderr
    assert "05 verify" in result.stdout
    assert not (tmp_path / "ws" / "stages" / "09_shard").exists()


def test_two_runs_in_two_folders_give_byte_identical_parquet(tmp_path, cli, monkeypatch):
    """Determinism: timings stay out of the data; worker counts change nothing."""
    for name, workers in (("a", "1"), ("b", "2")):
        folder = tmp_path / name
        folder.mkdir()
        make_corpus(folder / "corpus.jsonl", math_rows=40, code_rows=8)
        monkeypatch.chdir(folder)
        result = cli("corpus.jsonl", "--out", "ws", "--workers", workers)
        assert result.returncode == 0, result.stderr
    assert_same_parquet(tmp_path / "a" / "ws", tmp_path / "b" / "ws")
    timings = (tmp_path / "a" / "ws" / "stages" / "05_verify" / "verify_timings.csv").read_text().splitlines()
    assert timings[0] == "row_id,seconds" and len(timings) > 40
    import curate.catalog

    con = curate.catalog.connect(tmp_path / "a" / "ws")
    assert con.execute("SELECT count(*), count(seconds) FROM verify").fetchone()[0] == len(timings) - 1
    assert con.execute("SELECT min(seconds) > 0 FROM verify WHERE kind = 'code'").fetchone()[0]
    details = con.execute("SELECT detail FROM verify WHERE kind = 'code'").fetchall()
    assert details and all('"seconds"' not in d for (d,) in details)
