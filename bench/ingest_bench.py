"""Ingest benchmark: a generated JSON-lines file of traces (5 GB by default) ingested by
distillery (streaming, worker processes) and converted by DuckDB's read_json on the same file,
with rows/s and the peak RSS of each whole process tree, side by side, and the load average
(timings on a loaded machine are only indicative). `--per-record` also times the per-record path
(`stages: {ingest: {fast: false}}`), which writes the same bytes.

    .venv/bin/python bench/ingest_bench.py --gb 5 --workers 2 [--per-record] [--repeat 3]

Besides wall time it prints each tool's CPU time per row (all its processes), which load changes
far less, and the ingest stage's own seconds (without the CLI's start-up and report).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: import this checkout

from bench.common import run_measured  # noqa: E402

OUT = Path(__file__).resolve().parent / "out" / "ingest"
WORDS = (
    "so we add the carry then check each digit again and compare with the bound before we simplify".split()
)


def generate(path: Path, gigabytes: float, seed: int = 0) -> int:
    """R1-style chat traces (~2 kB a row) until the file reaches the size; returns the row count."""
    target, rows, rng = int(gigabytes * (1 << 30)), 0, random.Random(seed)
    thinks = [" ".join(rng.choice(WORDS) for _ in range(300)) for _ in range(64)]
    with path.open("w") as handle:
        while handle.tell() < target:
            block = []
            for _ in range(10_000):
                a, b = rng.randint(1, 10**6), rng.randint(1, 10**6)
                record = {
                    "messages": [
                        {"role": "user", "content": f"Problem {rows}: compute {a} + {b}."},
                        {
                            "role": "assistant",
                            "content": f"<think>{thinks[rows % 64]}</think>The answer is \\boxed{{{a + b}}}.",
                        },
                    ],
                    "answer": str(a + b),
                    "source": "synthetic",
                }
                block.append(json.dumps(record))
                rows += 1
            handle.write("\n".join(block) + "\n")
    return rows


def run_tool(command: list[str]) -> tuple[float, int, float]:
    """Wall seconds, peak RSS (bytes) and CPU seconds (all its processes) of one tool's run."""
    seconds, peak, process, cpu = run_measured(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if process.returncode != 0:
        raise SystemExit(f"{command[0]} failed: {process.stderr.read().decode()[-2000:]}")
    return seconds, peak, cpu


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gb", type=float, default=5.0, help="size of the generated file")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the generated file for the next run")
    parser.add_argument("--per-record", action="store_true", help="also time the per-record ingest path")
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds, the tools taking turns in each; the best round counts"
    )
    args = parser.parse_args()

    OUT.mkdir(parents=True, exist_ok=True)
    data = OUT / f"traces-{args.gb:g}gb.jsonl"
    if not data.exists():
        print(f"generating {data} ...", flush=True)
        generate(data, args.gb)
    rows = sum(1 for _ in data.open("rb"))
    size = data.stat().st_size
    print(f"input: {data.name}, {size / 1e9:.2f} GB, {rows:,} rows", flush=True)

    ws, duck_out = OUT / "ws", OUT / "duckdb.parquet"
    load_before = os.getloadavg()
    command = [
        sys.executable,
        "-m",
        "distill.cli",
        "curate",
        str(data),
        "--out",
        str(ws),
        "--until",
        "ingest",
        "--workers",
        str(args.workers),
        "--quiet",
    ]
    tools = [(f"distillery ingest, fast path ({args.workers} workers)", command)]
    if args.per_record:
        config = OUT / "per-record.yaml"
        config.write_text("stages:\n  ingest:\n    fast: false\n")
        tools.append(
            (
                f"distillery ingest, per-record path ({args.workers} workers)",
                [*command, "--config", str(config)],
            )
        )
    duck_sql = (
        f"SET threads={args.workers}; COPY (SELECT * FROM read_json('{data}', format='newline_delimited')) "
        f"TO '{duck_out}' (FORMAT parquet, COMPRESSION zstd)"
    )
    tools.append(
        (
            f"duckdb read_json -> parquet ({args.workers} threads)",
            [sys.executable, "-c", f"import duckdb; duckdb.execute({duck_sql!r})"],
        )
    )
    runs: dict[str, list[tuple[float, int, float]]] = {name: [] for name, _ in tools}
    stage_seconds: list[float] = []
    for _ in range(args.repeat):
        for name, tool in tools:
            shutil.rmtree(ws, ignore_errors=True)
            runs[name].append(run_tool(tool))
            if tool is command:  # the ingest stage alone, without the CLI's start and report
                info = json.loads((ws / "stages" / "00_ingest" / "_stage.json").read_text())
                stage_seconds.append(info["seconds"])

    print(
        f"\n{'tool (best of ' + str(args.repeat) + ')':<52}{'seconds':>9}{'rows/s':>11}{'MB/s':>7}{'peak RSS':>11}{'CPU us/row':>12}"
    )
    best = {name: min(results) for name, results in runs.items()}
    for name, (seconds, peak, cpu) in best.items():
        print(
            f"{name:<52}{seconds:>9.1f}{rows / seconds:>11,.0f}{size / seconds / 1e6:>7.0f}"
            f"{peak / 2**30:>8.2f} GB{cpu / rows * 1e6:>12.1f}"
        )
    ours, duck = best[tools[0][0]], best[tools[-1][0]]
    rounds = [d[0] / o[0] for o, d in zip(runs[tools[0][0]], runs[tools[-1][0]], strict=True)]
    print(
        f"\nratio distillery/duckdb rows/s: {duck[0] / ours[0]:.2f}x (each round: {', '.join(f'{r:.2f}' for r in rounds)}); "
        f"CPU per row: {duck[2] / ours[2]:.2f}x; ingest stage alone {min(stage_seconds):.1f} s "
        f"({duck[0] / min(stage_seconds):.2f}x); distillery peak RSS {max(r[1] for r in runs[tools[0][0]]) / 2**30:.2f} GB"
    )
    load_after = os.getloadavg()
    print(
        f"load average (1, 5, 15 min) before: {' '.join(f'{x:.2f}' for x in load_before)}, "
        f"after: {' '.join(f'{x:.2f}' for x in load_after)} on {os.cpu_count()} cores"
    )
    shutil.rmtree(ws, ignore_errors=True)
    duck_out.unlink(missing_ok=True)
    if not args.keep:
        data.unlink()


if __name__ == "__main__":
    main()
