"""Atomic commits, resume after SIGKILL, reuse of committed stages, determinism."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from curate.pipeline import curate
from curate.workspace import Workspace


def make_corpus(path: Path, rows: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    with path.open("w") as handle:
        for i in range(rows):
            a, b = rng.randint(1, 999), rng.randint(1, 999)
            think = " ".join(rng.choice(["add", "carry", "check", "sum", "digits"]) for _ in range(40))
            record = {
                "messages": [
                    {"role": "user", "content": f"Problem {i}: what is {a} + {b}?"},
                    {
                        "role": "assistant",
                        "content": f"<think>{think}</think> The answer is \\boxed{{{a + b}}}.",
                    },
                ],
                "answer": str(a + b),
            }
            handle.write(json.dumps(record) + "\n")
    return path


def parquet_bytes(ws: Path) -> dict[str, bytes]:
    files = sorted(p for p in ws.rglob("*.parquet"))
    assert files, f"no parquet under {ws}"
    return {str(p.relative_to(ws)): p.read_bytes() for p in files}


def run_cli(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "distill.cli", "curate", *args, "--quiet", "--until", "normalize"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )


def kill_when(process: subprocess.Popen, marker: Path, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not marker.exists():
        if process.poll() is not None:
            pytest.fail(f"curate finished before {marker} appeared: {process.stderr.read()}")
        if time.time() > deadline:
            process.kill()
            pytest.fail(f"{marker} never appeared")
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus") / "traces.jsonl", 24_000)


@pytest.fixture(scope="module")
def reference_ws(tmp_path_factory, corpus) -> Path:
    ws = tmp_path_factory.mktemp("ref") / "ws"
    process = run_cli([str(corpus), "--out", str(ws)])
    assert process.wait() == 0, process.stderr.read()
    return ws


@pytest.mark.parametrize("stage", ["00_ingest", "01_normalize"])
def test_sigkill_mid_stage_then_rerun_is_byte_identical(tmp_path, corpus, reference_ws, stage):
    ws = tmp_path / "ws"
    process = run_cli([str(corpus), "--out", str(ws)])
    kill_when(process, ws / "stages" / f".tmp-{stage}" / "part-00000.parquet")
    committed_before = [s.name for s in Workspace(ws).committed()]
    rerun = run_cli([str(corpus), "--out", str(ws)])
    out, err = rerun.communicate()
    assert rerun.returncode == 0, err
    if stage == "01_normalize":
        assert committed_before == ["ingest"]
        assert "reused" in out.splitlines()[2]  # ingest was not redone
    assert not list((ws / "stages").glob(".tmp-*"))
    assert parquet_bytes(ws) == parquet_bytes(reference_ws)


def test_rerun_reuses_every_stage_and_changes_nothing(tmp_path, corpus, reference_ws):
    ws = tmp_path / "ws"
    curate([str(corpus)], ws, progress=False, until="normalize")
    before = parquet_bytes(ws)
    results = curate([str(corpus)], ws, progress=False, until="normalize")
    assert all(r.get("reused") for r in results)
    assert parquet_bytes(ws) == before == parquet_bytes(reference_ws)


def test_workers_do_not_change_the_output(tmp_path, corpus):
    config = {"stages": {"ingest": {"chunk_bytes": 256 << 10}}}
    curate([str(corpus)], tmp_path / "one", config, workers=1, progress=False, until="normalize")
    curate([str(corpus)], tmp_path / "two", config, workers=2, progress=False, until="normalize")
    assert parquet_bytes(tmp_path / "one") == parquet_bytes(tmp_path / "two")


def test_changed_config_or_input_reruns_what_depends_on_it(tmp_path):
    data = make_corpus(tmp_path / "small.jsonl", 50)
    ws = tmp_path / "ws"
    curate([str(data)], ws, progress=False, until="normalize")
    again = curate([str(data)], ws, {"source": "renamed"}, progress=False, until="normalize")
    assert [r.get("reused", False) for r in again] == [False, False]
    make_corpus(data, 60, seed=1)
    changed = curate([str(data)], ws, {"source": "renamed"}, progress=False, until="normalize")
    assert not changed[0].get("reused") and changed[0]["rows_out"] == 60
    manifest = json.loads((ws / "manifest.json").read_text())
    assert [s["name"] for s in manifest["stages"]] == ["ingest", "normalize"]
    assert manifest["stages"][0]["inputs"][0]["format"] == "chat"


def test_orphans_of_a_crash_are_cleaned(tmp_path):
    data = make_corpus(tmp_path / "small.jsonl", 20)
    ws = tmp_path / "ws"
    curate([str(data)], ws, progress=False, until="normalize")
    (ws / "stages" / ".tmp-02_exact_dedup").mkdir()
    (ws / "rejected" / "02_exact_dedup.parquet").write_bytes(b"half written")
    Workspace.open(ws, create=True)
    assert not (ws / "stages" / ".tmp-02_exact_dedup").exists()
    assert not (ws / "rejected" / "02_exact_dedup.parquet").exists()
