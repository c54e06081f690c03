"""SIGKILL at random points of every stage: the rerun resumes, the workspace ends byte-identical
to an uninterrupted run's, and no worker or sandbox process outlives the killed run."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import shutil
import signal
import time
from pathlib import Path

import pytest

from tests.reliability.helpers import alive, assert_same_parquet, descendants, make_corpus, wait_gone

# (marker that says the target is running, target name): a stage's temporary folder exists while
# it runs; the report is written after the last stage commits, so its marker is that commit.
TARGETS = [
    ("stages/.tmp-00_ingest", "ingest"),
    ("stages/.tmp-03_near_dedup", "near_dedup"),
    ("stages/.tmp-05_verify", "verify"),
    ("stages/.tmp-09_shard", "shard"),
    ("stages/09_shard/_stage.json", "report"),
]
PASSES = 4  # 4 passes x 5 targets = 20 kills
ARGS = ("corpus.jsonl", "--out", "ws", "--workers", "2")


def _curate_in_child(folder: Path) -> None:
    """The child: `distillery curate ARGS` in `folder`, its exit code as the process's (a crash
    leaves its traceback in folder/child-error.txt)."""
    import traceback

    from distill.cli import main

    os.chdir(folder)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    code = 70
    try:
        code = main(["curate", *ARGS, "--quiet"])
    except BaseException:
        Path("child-error.txt").write_text(traceback.format_exc())
    finally:
        os._exit(code)


# Children come from a fork server that has imported the pipeline once: a start costs milliseconds,
# not an interpreter's import time, and no child inherits the test process's threads.
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(
    ["distill.cli", "curate.pipeline", "curate.verify.math", "curate.verify.code"]
)


def _start(folder: Path) -> multiprocessing.Process:
    process = _CONTEXT.Process(target=_curate_in_child, args=(folder,))
    process.start()
    return process


def _kill_in(folder: Path, marker: str, window: float, rng: random.Random) -> dict:
    """Start curate, SIGKILL it a random moment after `marker` appears; where it died, and
    which of its processes outlived it."""
    process = _start(folder)
    deadline = time.monotonic() + 300
    while not (folder / "ws" / marker).exists():
        if not process.is_alive():
            return {"where": None, "finished": True, "left": set(), "children": 0}
        assert time.monotonic() < deadline, f"{marker} never appeared"
        time.sleep(0.005)
    time.sleep(rng.uniform(0, window))
    children = descendants(process.pid)
    running = sorted(p.name for p in (folder / "ws" / "stages").glob(".tmp-*"))
    os.kill(process.pid, signal.SIGKILL)
    process.join()
    return {"where": running, "finished": False, "left": wait_gone(children), "children": len(children)}


def _run_to_the_end(folder: Path) -> int:
    process = _start(folder)
    process.join(600)
    assert process.exitcode is not None, f"curate in {folder} did not finish"
    error = folder / "child-error.txt"
    assert not error.exists(), error.read_text()
    return process.exitcode


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_sigkill_at_random_points_of_every_stage_resumes_to_identical_files(tmp_path):
    reference = tmp_path / "reference"
    reference.mkdir()
    make_corpus(reference / "corpus.jsonl")
    assert _run_to_the_end(reference) == 0
    seconds = {
        s["name"]: s["seconds"]
        for s in json.loads((reference / "ws" / "manifest.json").read_text())["stages"]
    }
    windows = {"report": 0.3, **{name: 0.7 * max(seconds.get(name, 0.1), 0.05) for _, name in TARGETS}}

    rng = random.Random(18)
    kills, hits, sandboxes_seen = 0, set(), 0
    for number in range(PASSES):
        folder = tmp_path / f"pass{number}"
        folder.mkdir()
        shutil.copy(reference / "corpus.jsonl", folder / "corpus.jsonl")
        for marker, target in TARGETS:
            outcome = _kill_in(folder, marker, windows[target], rng)
            if outcome["finished"]:
                continue
            kills += 1
            assert not outcome["left"], f"processes outlived the run killed in {target}: {outcome['left']}"
            where = outcome["where"]
            if (
                target == "report" and not where
            ) or f".tmp-{marker.split('-', 1)[-1].split('/')[0]}" in where:
                hits.add(target)
            if target == "verify" and outcome["children"]:
                sandboxes_seen += 1
        lock = json.loads((folder / "ws" / ".lock").read_text())
        assert lock["running"]  # the killed run's lock record: the next run takes it over
        assert _run_to_the_end(folder) == 0
        assert_same_parquet(reference / "ws", folder / "ws")
        assert not list((folder / "ws" / "stages").glob(".tmp-*"))
    assert kills >= 20
    assert hits == {name for _, name in TARGETS}, f"targets hit while running: {sorted(hits)}"
    assert sandboxes_seen, "no kill landed while verify's workers were running"


def test_alive_ignores_finished_processes():
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert alive({child.pid}) == set()
