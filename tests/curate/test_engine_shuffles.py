"""The global stages' shuffles through StageContext.map: exact_dedup's content-hash partitions and
decontaminate's broadcast give the same bytes whatever the number of pieces, partitions and workers."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow.parquet as pq

from curate.pipeline import curate
from curate.stages import decontaminate, exact_dedup
from tests.conftest import write_jsonl


def _problem(i: int) -> str:
    return f"Find the number of positive integers n below {i} such that n squared plus {i} is divisible by 7."


def _inputs(tmp_path: Path) -> tuple[Path, Path]:
    rows = []
    for i in range(300):
        rows.append({"problem": _problem(i), "response": f"\\boxed{{{i % 7}}}", "answer": str(i % 7)})
        if i % 3 == 0:  # an identical trace: dropped
            rows.append(
                {"problem": _problem(i).upper(), "response": f"\\boxed{{{i % 7}}}", "answer": str(i % 7)}
            )
        if i % 4 == 0:  # another trace of the problem: kept
            rows.append({"problem": _problem(i), "response": f"So \\boxed{{{i % 7}}}", "answer": str(i % 7)})
        if i % 5 == 0:  # a bare prompt copy: dropped
            rows.append({"problem": _problem(i)})
    benchmark = [{"problem": _problem(i), "answer": str(i % 7)} for i in range(0, 300, 25)]
    return write_jsonl(tmp_path / "traces.jsonl", rows), write_jsonl(tmp_path / "bench.jsonl", benchmark)


def _digests(ws: Path) -> dict[str, str]:
    return {
        str(p.relative_to(ws)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(ws.rglob("*.parquet"))
    }


def test_shuffles_give_the_same_bytes_for_any_cut_and_worker_count(tmp_path, monkeypatch):
    traces, bench = _inputs(tmp_path)
    config = {"stages": {"near_dedup": {"enabled": False}, "decontaminate": {"benchmarks": [str(bench)]}}}
    whole = tmp_path / "whole"
    curate([str(traces)], whole, config, workers=1, progress=False, until="decontaminate")
    # 7 key pieces (so 7 partitions) and 6 decontamination pieces, on a pool of 2 processes
    monkeypatch.setattr(exact_dedup, "PIECE_ROWS", 80)
    monkeypatch.setattr(decontaminate, "ROW_CHUNK", 90)
    cut = tmp_path / "cut"
    curate([str(traces)], cut, config, workers=2, progress=False, until="decontaminate")
    assert _digests(cut) == _digests(whole)
    dropped = {
        name: pq.read_table(whole / "rejected" / f"{name}.parquet")["reason"].to_pylist()
        for name in ("02_exact_dedup", "03_decontaminate")
    }
    assert dropped["02_exact_dedup"].count("duplicate") == 100 + 60  # 100 identical traces, 60 bare prompts
    assert set(dropped["03_decontaminate"]) == {"contaminated"} and len(dropped["03_decontaminate"]) >= 12
    clusters = pq.read_table(whole / "stages" / "02_exact_dedup" / "clusters.parquet")
    assert clusters["row_id"].to_pylist() == sorted(clusters["row_id"].to_pylist())
