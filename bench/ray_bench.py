"""Ray engine overhead: the same curate runs on `--engine local` and `--engine ray`, side by side.

    .venv/bin/python bench/ray_bench.py                    # 110k-doc dedup + the 164 HumanEval samples
    .venv/bin/python bench/ray_bench.py --docs 20000 --only dedup

dedup:    bench/dedup_bench.py's speed corpus (real problems plus perturbed and changed-number
          copies), stages normalize, exact_dedup, near_dedup, decontaminate (against aime24, amc23
          and math500).
verify:   ../shared/data/code/humaneval.jsonl (164 canonical solutions), stage verify alone.

The Ray runs start a one-machine cluster for the run (ray.init(address="local")) and count its
start-up apart. Each run checks that both engines wrote byte-identical Parquet files. For the
N-node plan (docs/ray.md) it prints, per stage, the bytes per row that move: the Arrow rows each
batch task reads and returns, the prepared stage the driver broadcasts to the batch tasks, and
what the global pass's StageContext.map tasks are sent and send back (pickled items, results and
`shared`; an item that names its rows, an InputPiece, is a few bytes: the task reads the rows).
Figures depend on the machine's load, printed with them (os.getloadavg()).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere: import this checkout's packages

DATA = REPO / ".." / "shared" / "data"
# decontaminate's benchmarks in the dedup run: their n-gram table is what its tasks are sent
BENCHMARKS = {
    "decontaminate": {
        "benchmarks": [
            str(DATA / f) for f in ("bench/aime24.jsonl", "bench/amc23.jsonl", "math/math500.jsonl")
        ]
    }
}


def _stages(keep: set[str], extra: dict | None = None) -> dict:
    from curate.stages import PIPELINE

    stages = {name: ({} if name in keep else {"enabled": False}) for name in PIPELINE}
    return {**stages, **(extra or {})}


def _digests(ws: Path) -> dict[str, str]:
    return {
        str(p.relative_to(ws)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(ws.rglob("*.parquet"))
    }


def _run(inputs: list[str], ws: Path, config: dict, engine, workers: int) -> tuple[float, list[dict]]:
    from curate.pipeline import build_stages
    from curate.stage import run_stages
    from curate.workspace import Workspace

    ws_obj = Workspace.open(ws, create=True)
    stages = build_stages(inputs, config)
    start = time.perf_counter()
    results = run_stages(ws_obj, stages, workers=workers, progress=False, engine=engine)
    return time.perf_counter() - start, results


def _bytes_per_row(ws: Path, results: list[dict]) -> dict[str, float]:
    """Arrow bytes per row of each stage's input (what its batch tasks read, then send back)."""
    import pyarrow.parquet as pq

    out = {}
    for previous, info in zip(results, results[1:], strict=False):
        parts = sorted((ws / "stages" / f"{previous['index']:02d}_{previous['name']}").glob("part-*.parquet"))
        rows = sum(pq.ParquetFile(p).metadata.num_rows for p in parts)
        nbytes = sum(pq.read_table(p).nbytes for p in parts)
        out[info["name"]] = nbytes / rows if rows else 0.0
    return out


def compare(name: str, inputs: list[str], config: dict, workers: int) -> None:
    from curate.engine.local import LocalEngine
    from curate.engine.ray import RayEngine

    rows = {}
    with tempfile.TemporaryDirectory(prefix=f"ray-bench-{name}-") as tmp:
        local_s, local_results = _run(inputs, Path(tmp) / "local", config, LocalEngine(workers), workers)
        load_local = os.getloadavg()
        started = time.perf_counter()
        engine = RayEngine(None, workers, progress=False)
        startup = time.perf_counter() - started
        engine.measure = {}
        try:
            ray_s, ray_results = _run(inputs, Path(tmp) / "ray", config, engine, workers)
        finally:
            engine.close()
        load_ray = os.getloadavg()
        same = _digests(Path(tmp) / "local") == _digests(Path(tmp) / "ray")
        per_row = _bytes_per_row(Path(tmp) / "local", local_results)
        ingested = local_results[0]["rows_out"]
        for info_l, info_r in zip(local_results, ray_results, strict=True):
            rows[info_l["name"]] = (info_l["seconds"], info_r["seconds"])
        broadcast = dict(engine.measure)
    print(
        f"\n== {name}: {ingested:,} rows, {workers} workers, inputs {', '.join(Path(i).name for i in inputs)} =="
    )
    print(
        f"{'stage':<16}{'local s':>9}{'ray s':>9}{'ratio':>8}{'row bytes':>11}{'broadcast B/row':>17}"
        f"{'map B/row':>11}"
    )
    for stage, (a, b) in rows.items():
        wire = per_row.get(stage)
        cast, mapped = broadcast.get(stage), broadcast.get(f"{stage} map")
        print(
            f"{stage:<16}{a:>9.1f}{b:>9.1f}{(b / a if a else float('nan')):>8.2f}"
            f"{(f'{wire:,.0f}' if wire is not None else '-'):>11}"
            f"{(f'{cast / ingested:,.1f}' if cast is not None else '-'):>17}"
            f"{(f'{mapped / ingested:,.1f}' if mapped is not None else '-'):>11}"
        )
    print(
        f"total: local {local_s:.1f} s, ray {ray_s:.1f} s (+ {startup:.1f} s cluster start): "
        f"ray/local x{ray_s / local_s:.2f}; byte-identical Parquet: {same}"
    )
    print(f"load average (1, 5, 15 min): after local {load_local}, after ray {load_ray}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=["dedup", "verify"])
    parser.add_argument("--docs", type=int, default=110_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if not (DATA / "code" / "humaneval.jsonl").exists():
        raise SystemExit(f"shared data not found at {DATA}")
    if args.only in (None, "verify"):
        compare(
            "verify (HumanEval)",
            [str(DATA / "code" / "humaneval.jsonl")],
            {"stages": _stages({"verify"})},
            args.workers,
        )
    if args.only in (None, "dedup"):
        from bench.dedup_bench import base_problems, build_corpus, write_corpus

        copies = max(0.0, args.docs / len(base_problems()) - 1.25)
        with tempfile.TemporaryDirectory(prefix="ray-bench-corpus-") as tmp:
            corpus = Path(tmp) / "dedup.jsonl"
            write_corpus(build_corpus(copies=copies, changed=0.25, seed=0), corpus)
            compare(
                "dedup",
                [str(corpus)],
                {"stages": _stages({"normalize", "exact_dedup", "near_dedup", "decontaminate"}, BENCHMARKS)},
                args.workers,
            )


if __name__ == "__main__":
    main()
