"""Whole-pipeline benchmark: a generated corpus of real-shaped traces through every default stage,
at several sizes, with each stage's wall seconds, rows/s and peak RSS, and how each grows.

    .venv/bin/python bench/pipeline_bench.py                      # 100k, 300k and 1M rows
    .venv/bin/python bench/pipeline_bench.py --sizes 20000 --workers 2
    .venv/bin/python bench/pipeline_bench.py --sizes 300000 --resume   # keep what a run measured

The corpus (chat rows, 2-8 kB of `<think>` reasoning each): math with a boxed answer and a
reference, code with a stdin test spec and a fenced Python solution, science multiple choice; and
the defects the demo plants: exact duplicates, near-duplicates (a problem with an instruction
appended and a response with a word changed), wrong answers, truncated traces (no final answer)
and problems copied from a benchmark file that `decontaminate` is pointed at.

Each stage is measured through the documented entry point: `distillery curate ... --until STAGE`
in a fresh process, which reuses the stages already committed and runs one more; its wall time and
the peak RSS and CPU seconds (user + system) of its process tree are that stage's (plus process
start-up and the report, both shown apart in the `report + start-up` row: a rerun that reuses every
stage). Then `distillery sql` and `distillery export` over the finished workspace. CPU seconds
change far less with the machine's load than wall seconds, so growth is judged on them.

Each size's measurements are saved beside its workspace (`results.json`) as they are made. With
`--resume` the workspace is kept: a stage distillery reuses (same fingerprint: same code, options
and input) keeps its saved measurement, and only the stages that changed are run and measured.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: import this checkout

from bench.common import run_measured  # noqa: E402

OUT = Path(__file__).resolve().parent / "out" / "pipeline"
STAGES = (
    "ingest",
    "normalize",
    "exact_dedup",
    "near_dedup",
    "decontaminate",
    "verify",
    "quality",
    "domain",
    "select",
    "shard",
)
# Shares of the corpus: domains of the rows, and the planted defects among them (the rest is clean).
DOMAIN_SHARES = {"math": 0.45, "code": 0.30, "science": 0.25}
PLANTS = {
    "exact_duplicate": 0.03,
    "near_duplicate": 0.03,
    "wrong_answer": 0.05,
    "truncated": 0.02,
    "contaminated": 0.01,
}
BENCHMARK_ITEMS = 500
RECENT = 1000
CODE_OPS = {"sum": "a + b", "difference": "a - b", "product": "a * b", "maximum": "max(a, b)"}
SCIENCE_TERMS = "energy velocity molecule electron acid cell force mass photon enzyme".split()


class TextPool:
    """Random prose from a fixed pseudo-word vocabulary: slices of one long random text, so every
    row's reasoning is distinct (as real traces are) and generating a million costs seconds."""

    def __init__(self, rng: random.Random, chars: int = 24 << 20):
        syllables = [a + b for a in "bcdfghklmnprstvz" for b in "aeiou"]
        vocabulary = ["".join(rng.choices(syllables, k=rng.randint(1, 4))) for _ in range(5000)]
        words, size = [], 0
        while size < chars:
            chunk = rng.choices(vocabulary, k=10_000)
            words.extend(chunk)
            size += sum(len(w) + 1 for w in chunk)
        self.text = " ".join(words)
        self.vocabulary = vocabulary
        self.rng = rng

    def words(self, count: int) -> str:
        return " ".join(self.rng.choices(self.vocabulary, k=count))

    def passage(self, length: int) -> str:
        start = self.text.find(" ", self.rng.randrange(len(self.text) - length - 100)) + 1
        end = self.text.rfind(" ", start, start + length)
        return self.text[start:end]


def chat(problem: str, response: str, **fields) -> dict:
    return {
        "messages": [{"role": "user", "content": problem}, {"role": "assistant", "content": response}],
        **fields,
    }


def math_row(pool: TextPool, index: int, wrong: bool, truncated: bool) -> dict:
    a, b, c = pool.rng.randint(2, 999), pool.rng.randint(2, 999), pool.rng.randint(1, 99_999)
    value = a * b + c
    problem = f"Problem {index}. {pool.words(pool.rng.randint(20, 60))}. Compute {a} \\cdot {b} + {c}."
    think = f"{pool.passage(pool.rng.randint(2000, 8000))} So {a} times {b} plus {c} is {value}."
    answer = value + pool.rng.randint(1, 9) if wrong else value
    response = f"<think>{think}</think>\nThe answer is $\\boxed{{{answer}}}$."
    if truncated:
        response = f"<think>{think[: len(think) // 2]}"
    return chat(problem, response, answer=str(value))


def code_row(pool: TextPool, index: int, wrong: bool, truncated: bool) -> dict:
    name = pool.rng.choice(list(CODE_OPS))
    problem = (
        f"Task {index}. {pool.words(pool.rng.randint(20, 60))}. Read two integers a and b from one line "
        f"of standard input and print their {name}."
    )
    expression = "a + b + 1" if wrong else CODE_OPS[name]
    code = f"a, b = map(int, input().split())\nprint({expression})"
    think = pool.passage(pool.rng.randint(2000, 8000))
    response = f"<think>{think}</think>\n```python\n{code}\n```"
    if truncated:
        response = f"<think>{think[: len(think) // 2]}"
    cases = []
    for _ in range(3):
        a, b = pool.rng.randint(-1000, 1000), pool.rng.randint(-1000, 1000)
        cases.append({"input": f"{a} {b}\n", "output": f"{eval(CODE_OPS[name])}\n"})  # noqa: S307
    return chat(problem, response, tests={"kind": "stdin", "cases": cases})


def science_row(pool: TextPool, index: int, wrong: bool, truncated: bool) -> dict:
    terms = " and ".join(pool.rng.sample(SCIENCE_TERMS, 2))
    options = [pool.words(3) for _ in range(4)]
    correct = pool.rng.choice("ABCD")
    letters = "\n".join(f"{letter}) {text}" for letter, text in zip("ABCD", options, strict=True))
    problem = f"Question {index} on {terms}: {pool.words(pool.rng.randint(20, 60))}?\n{letters}"
    answer = "ABCD"[("ABCD".index(correct) + 1) % 4] if wrong else correct
    think = pool.passage(pool.rng.randint(2000, 8000))
    response = f"<think>{think}</think>\nThe answer is \\boxed{{{answer}}}."
    if truncated:
        response = f"<think>{think[: len(think) // 2]}"
    return chat(problem, response, answer=correct)


MAKERS = {"math": math_row, "code": code_row, "science": science_row}


def generate(folder: Path, rows: int, seed: int = 0) -> tuple[Path, Path]:
    """Write `traces.jsonl` (`rows` lines) and the benchmark file its contaminated rows copy from."""
    rng = random.Random(seed)
    pool = TextPool(rng)
    benchmark = folder / "benchmark.jsonl"
    items = [f"Benchmark item {i}: {pool.words(40)}. Compute {i} + {i + 7}." for i in range(BENCHMARK_ITEMS)]
    benchmark.write_text(
        "".join(json.dumps({"problem": p, "answer": str(2 * i + 7)}) + "\n" for i, p in enumerate(items))
    )
    traces = folder / "traces.jsonl"
    domains, weights = list(DOMAIN_SHARES), list(DOMAIN_SHARES.values())
    kinds = [*PLANTS, "clean"]
    kind_weights = [*PLANTS.values(), 1 - sum(PLANTS.values())]
    recent: list[dict] = []  # duplicates copy one of the last RECENT fresh rows (a ring)
    with traces.open("w") as handle:
        for index in range(rows):
            kind = rng.choices(kinds, kind_weights)[0]
            if kind == "exact_duplicate" and recent:
                record = rng.choice(recent)
            elif kind == "near_duplicate" and recent:
                source = rng.choice(recent)
                problem = source["messages"][0]["content"] + " Please reason step by step."
                response = source["messages"][1]["content"].replace(" ", " so ", 1)
                record = {**source, **chat(problem, response)}
            elif kind == "contaminated":
                item = rng.randrange(BENCHMARK_ITEMS)
                response = f"<think>{pool.passage(3000)}</think>\nThe answer is $\\boxed{{{2 * item + 7}}}$."
                record = chat(items[item], response, answer=str(2 * item + 7))
            else:
                domain = rng.choices(domains, weights)[0]
                record = MAKERS[domain](pool, index, kind == "wrong_answer", kind == "truncated")
                if len(recent) < RECENT:
                    recent.append(record)
                else:
                    recent[index % RECENT] = record
            handle.write(json.dumps(record) + "\n")
    return traces, benchmark


def distillery(*args: str) -> list[str]:
    return [sys.executable, "-m", "distill.cli", *args]


CPUACCT = Path("/sys/fs/cgroup/cpuacct")


def measure(command: list[str]) -> tuple[float, int, float]:
    """Wall seconds, peak RSS (bytes) and CPU seconds of `command`'s process tree. The CPU is a
    cgroup's count where this machine lets us make one (cgroup v1 cpuacct, as root): every
    descendant counts, even one reparented to init before it ends, as verify's forkserver is.
    Elsewhere it is the kernel's count for the finished descendants reaped through our children,
    which misses such orphans."""
    group = CPUACCT / f"pipeline-bench-{os.getpid()}-{time.monotonic_ns()}"
    try:
        group.mkdir()
    except OSError:
        group = None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    enter = (lambda: (group / "cgroup.procs").write_text(str(os.getpid()))) if group else None
    try:
        with tempfile.TemporaryFile() as errors:  # a pipe nobody reads could fill and stall the run
            seconds, peak, process, _ = run_measured(
                command, stdout=subprocess.DEVNULL, stderr=errors, preexec_fn=enter
            )
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            if group:
                cpu = int((group / "cpuacct.usage").read_text()) / 1e9
            if process.returncode != 0:
                errors.seek(0)
                raise SystemExit(f"{' '.join(command)} failed:\n{errors.read().decode()[-3000:]}")
    finally:
        if group:
            for pid in (group / "cgroup.procs").read_text().split():  # orphans still running
                (CPUACCT / "cgroup.procs").write_text(pid)
            with contextlib.suppress(OSError):  # busy while a moved task is still exiting: harmless
                group.rmdir()
    return seconds, peak, cpu


def side_table_bytes(stage_dir: Path) -> int:
    """Bytes of a stage's side files (clusters, signatures, verify results ...): every file but
    its row parts and rejected rows."""
    return sum(
        f.stat().st_size
        for f in stage_dir.iterdir()
        if f.is_file() and not f.name.startswith(("part-", "rejected", "_"))
    )


def stage_code(stage: str) -> str:
    """The code hash distillery would give `stage` now (curate.codehash over this checkout)."""
    from curate.codehash import code_hash
    from curate.stages import STAGES as CLASSES

    (cls,) = [cls for cls in CLASSES if cls.name == stage]
    return code_hash(cls.__module__)


def run_size(rows: int, workers: int, out: Path = OUT, resume: bool = False) -> list[dict]:
    folder = out / f"n{rows}"
    folder.mkdir(parents=True, exist_ok=True)
    traces, benchmark = folder / "traces.jsonl", folder / "benchmark.jsonl"
    if not traces.exists():
        print(f"generating {rows:,} rows ...", flush=True)
        generate(folder, rows)
    config = folder / "curate.yaml"
    config.write_text(
        json.dumps({"workers": workers, "stages": {"decontaminate": {"benchmarks": [str(benchmark)]}}})
    )
    ws, saved_file = folder / "ws", folder / "results.json"
    saved = (
        {r["stage"]: r for r in json.loads(saved_file.read_text())} if resume and saved_file.exists() else {}
    )
    if not resume:
        shutil.rmtree(ws, ignore_errors=True)
    common = ["curate", str(traces), "--out", str(ws), "--config", str(config), "--quiet"]
    results: list[dict] = []

    def record(result: dict) -> None:
        results.append(result)
        saved_file.write_text(json.dumps(results, indent=1))

    def measured_before(entry: dict, before: dict | None) -> bool:
        """The saved measurement is of this very commit of the stage (same fingerprint and run)."""
        return bool(before) and (before.get("fingerprint"), before["stage_s"]) == (
            entry["fingerprint"],
            entry["seconds"],
        )

    def committed() -> dict[str, dict]:
        manifest = ws / "manifest.json"
        return {e["name"]: e for e in json.loads(manifest.read_text())["stages"]} if manifest.exists() else {}

    # `--until STAGE` drops the stages after STAGE (the workspace shows the run asked for), so the
    # leading stages already committed and measured with this checkout's code are taken as they
    # are, without a command; one whose code changed would be redone inside the next stage's figure.
    skipped = {}
    for stage in STAGES:
        entry, before = committed().get(stage), saved.get(stage)
        if not (entry and measured_before(entry, before) and entry.get("code") == stage_code(stage)):
            break
        record(before)
        skipped[stage] = entry
        print(f"  {rows:,} {stage}: committed and measured before", flush=True)
    for stage in STAGES[len(skipped) :]:
        seconds, peak, cpu = measure(distillery(*common, "--until", stage))
        now = committed()
        if redone := [name for name, entry in skipped.items() if now[name] != entry]:
            print(f"  warning: {', '.join(redone)} redone (code changed) inside {stage}'s figure", flush=True)
            skipped = {}
        entry, before = now[stage], saved.get(stage)
        if measured_before(entry, before):
            record(before)  # the same commit of the stage as when it was measured
            print(f"  {rows:,} {stage}: reused, measured before", flush=True)
            continue
        record(
            {
                "stage": stage,
                "fingerprint": entry["fingerprint"],
                "rows_in": entry["rows_in"],
                "rows_out": entry["rows_out"],
                "stage_s": entry["seconds"],
                "wall_s": seconds,
                "cpu_s": cpu,
                "peak_rss": peak,
                "side_bytes": side_table_bytes(ws / "stages" / f"{entry['index']:02d}_{stage}"),
                "load": os.getloadavg()[0],
            }
        )
        print(
            f"  {rows:,} {stage}: {entry['seconds']:.1f} s, {cpu:.1f} CPU s, peak {peak / 1e6:,.0f} MB "
            f"(load {os.getloadavg()[0]:.1f})",
            flush=True,
        )
    seconds, peak, cpu = measure(distillery(*common))
    record(
        {
            "stage": "report + start-up",
            "rows_in": rows,
            "rows_out": rows,
            "stage_s": seconds,
            "wall_s": seconds,
            "cpu_s": cpu,
            "peak_rss": peak,
        }
    )
    for label, args in (
        ("sql funnel", ["sql", str(ws), "SELECT * FROM funnel", "--format", "csv"]),
        (
            "sql kept by domain",
            ["sql", str(ws), "SELECT domain, count(*) FROM kept GROUP BY 1", "--format", "csv"],
        ),
        ("export jsonl", ["export", str(ws), "--to", "jsonl", "--out", str(folder / "export")]),
    ):
        shutil.rmtree(folder / "export", ignore_errors=True)
        seconds, peak, cpu = measure(distillery(*args))
        record(
            {
                "stage": label,
                "rows_in": rows,
                "rows_out": rows,
                "stage_s": seconds,
                "wall_s": seconds,
                "cpu_s": cpu,
                "peak_rss": peak,
            }
        )
    shutil.rmtree(folder / "export", ignore_errors=True)
    return results


def print_table(rows: int, results: list[dict]) -> None:
    """One size: per stage its rows, seconds (own, wall, CPU), rows/s, peak RSS and bytes per row."""
    print(f"\n{rows:,} rows")
    print(
        f"{'stage':<20} {'rows in':>10} {'kept':>10} {'stage s':>9} {'wall s':>8} {'CPU s':>8} {'rows/s':>9} "
        f"{'peak RSS MB':>12} {'RSS B/row':>10} {'side B/row':>11}"
    )
    for r in results:
        rate = r["rows_in"] / r["stage_s"] if r["stage_s"] else float("inf")
        side = f"{r['side_bytes'] / max(r['rows_in'], 1):>11,.0f}" if "side_bytes" in r else f"{'':>11}"
        print(
            f"{r['stage']:<20} {r['rows_in']:>10,} {r['rows_out']:>10,} {r['stage_s']:>9.1f} {r['wall_s']:>8.1f} "
            f"{r['cpu_s']:>8.1f} {rate:>9,.0f} {r['peak_rss'] / 1e6:>12,.0f} "
            f"{r['peak_rss'] / max(r['rows_in'], 1):>10,.0f} {side}"
        )
    pipeline = [r for r in results if r["stage"] in STAGES or r["stage"] == "report + start-up"]
    wall, cpu = sum(r["wall_s"] for r in pipeline), sum(r["cpu_s"] for r in pipeline)
    peak = max(r["peak_rss"] for r in results)
    print(
        f"{'end to end':<20} {rows:>10,} {results[len(STAGES) - 1]['rows_out']:>10,} {'':>9} {wall:>8.1f} "
        f"{cpu:>8.1f} {rows / wall:>9,.0f} {peak / 1e6:>12,.0f} {peak / rows:>10,.0f}"
    )


def print_growth(by_size: dict[int, list[dict]]) -> None:
    """Each stage's time, CPU and memory ratio between consecutive sizes, against n log n; and the
    peak RSS each extra row costs (the marginal bytes per row) beside its side files per row."""
    sizes = sorted(by_size)
    for small, large in zip(sizes, sizes[1:], strict=False):
        nlogn = large * math.log(large) / (small * math.log(small))
        print(f"\ngrowth {small:,} -> {large:,} rows (n: {large / small:.2f}x, n log n: {nlogn:.2f}x)")
        print(
            f"{'stage':<20} {'stage s x':>10} {'CPU s x':>8} {'peak RSS x':>11} {'RSS B/extra row':>16} "
            f"{'side B/row':>11}"
        )
        for a, b in zip(by_size[small], by_size[large], strict=True):
            marginal = (b["peak_rss"] - a["peak_rss"]) / (large - small)
            side = f"{b['side_bytes'] / max(b['rows_in'], 1):>11,.0f}" if "side_bytes" in b else ""
            print(
                f"{a['stage']:<20} {b['stage_s'] / max(a['stage_s'], 1e-3):>10.2f} "
                f"{b['cpu_s'] / max(a['cpu_s'], 1e-3):>8.2f} {b['peak_rss'] / a['peak_rss']:>11.2f} "
                f"{marginal:>16,.0f} {side}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--out", type=Path, default=OUT, help=f"where corpora and workspaces go (default {OUT})"
    )
    parser.add_argument(
        "--resume", action="store_true", help="keep each workspace; reuse the measurements of reused stages"
    )
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    by_size = {rows: run_size(rows, args.workers, args.out, args.resume) for rows in sorted(args.sizes)}
    for rows, results in by_size.items():
        print_table(rows, results)
    print_growth(by_size)
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
