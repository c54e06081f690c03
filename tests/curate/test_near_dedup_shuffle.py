"""near_dedup's phases through StageContext.map (row keys, signing, band buckets, confirmation,
response signatures) give the same bytes whatever the cut into tasks and the number of workers."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow.parquet as pq

from curate.pipeline import curate
from curate.stages import near_dedup
from tests.conftest import write_jsonl

STEM = (
    "A bag holds {n} red marbles and {m} blue marbles. Two marbles are drawn at random without "
    "replacement, one after the other. What is the probability that both marbles have the same colour?"
)


def _inputs(tmp_path: Path) -> Path:
    rows = []
    for i in range(120):
        text = STEM.format(n=i + 3, m=2 * i + 5)
        rows.append({"problem": text, "response": f"The answer is \\boxed{{{i}}}.", "answer": str(i)})
        if i % 2 == 0:  # an appended instruction: a near-duplicate problem, its trace near-identical
            rows.append(
                {
                    "problem": text + " Please reason step by step.",
                    "response": f"The answer is \\boxed{{{i}}}. ",
                    "answer": str(i),
                }
            )
        if i % 3 == 0:  # a prefix and another trace: a near-duplicate problem whose trace is kept
            rows.append({"problem": "Problem: " + text, "response": f"Counting pairs gives \\boxed{{{i}}}."})
        if i % 5 == 0:  # its last sentence dropped: contained in the original
            rows.append({"problem": text.rsplit(". ", 1)[0] + "."})
    return write_jsonl(tmp_path / "traces.jsonl", rows)


def _digests(ws: Path) -> dict[str, str]:
    return {
        str(p.relative_to(ws)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(ws.rglob("*.parquet"))
    }


def test_near_dedup_gives_the_same_bytes_for_any_cut_and_worker_count(tmp_path, monkeypatch):
    traces = _inputs(tmp_path)
    config = {"stages": {"exact_dedup": {"enabled": False}}}
    whole = tmp_path / "whole"
    curate([str(traces)], whole, config, workers=1, progress=False, until="near_dedup")
    # several tasks in every phase, on a pool of 2 processes
    monkeypatch.setattr(near_dedup, "ROW_PIECE", 70)
    monkeypatch.setattr(near_dedup, "NODE_CHUNK", 45)
    monkeypatch.setattr(near_dedup, "ONE_TASK_ROWS", 1)
    monkeypatch.setattr(near_dedup, "BAND_CELLS", 500)
    monkeypatch.setattr(near_dedup, "PAIR_CHUNK", 7)
    monkeypatch.setattr(near_dedup, "ONE_TASK_PAIRS", 1)
    cut = tmp_path / "cut"
    curate([str(traces)], cut, config, workers=2, progress=False, until="near_dedup")
    assert _digests(cut) == _digests(whole)
    (folder,) = (whole / "stages").glob("*_near_dedup")
    reasons = pq.read_table(whole / "rejected" / f"{folder.name}.parquet")["reason"].to_pylist()
    # the instruction copies' traces repeat the original's; the bare truncated copies add nothing
    assert reasons.count("near_duplicate") == 60 + 24
    clusters = pq.read_table(folder / "clusters.parquet")
    # 88 of the 120 problems have a copy (every 2nd, 3rd or 5th); neighbours differ in their numbers
    assert len(set(clusters["cluster_id"].to_pylist())) == 88
    assert clusters.num_rows == 88 + 60 + 40 + 24
