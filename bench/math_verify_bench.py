"""Math verification benchmark: distillery's verifier against math-verify on the same pairs, one run.

    .venv-bench/bin/python bench/math_verify_bench.py
    .venv-bench/bin/python bench/math_verify_bench.py --workers 1 2 --repeat 3 --show-rows

Sets (../shared/data/math, and bench/data in this repository):
  math500-own       each MATH-500 solution against its own `answer` (500 pairs, all should pass)
  math500-mismatch  each solution against the next row's answer, equal strings skipped (all should fail)
  qwen-cot          the 800 Qwen2.5-Math CoT samples against `gt`, scored against the shipped `score`
                    labels (which come from another grader and have errors of their own)
  answer-styles     bench/data/math_answer_styles.jsonl: our own hand-written pairs in the styles
                    answers come in (bare, sentences, number formats, units and percent words,
                    several answers, labelled references, answer tags and markers, delimiters)
                    with expected verdicts; rows marked `trap` must fail
"false+" counts pairs expected to fail that a tool passes (on answer-styles: traps in brackets).

math-verify gets the reference raw, as datasets store them, and wrapped in `$...$` (its best input
form); it runs as its documentation shows (parse + verify, default settings, one process).
distillery runs its worker pool with 1 and 2 workers. "cpu ms" is CPU time per check of the cold
pass (distillery: its workers plus the parent), which holds still when other jobs share the
machine; checks/s is wall-clock.

Both tools parse LaTeX with the same ANTLR grammar, which builds its prediction tables as it
meets new shapes of input, so a first pass over a set is slower than a second. Each tool is
therefore timed twice on the same pairs: "cold" is the first pass of a fresh process (math-verify
in a subprocess of its own; distillery in a new pool, whose workers fork from a server that has
parsed a small built-in sample), "warm" the second pass in that same process or pool. Start-up
(imports, pool start) is not counted in checks/s; it is printed apart.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / ".." / "shared" / "data" / "math"
MATH_VERIFY_FORMS = {"math-verify (raw ref)": False, "math-verify ($ref$)": True}


STYLES = REPO / "bench" / "data" / "math_answer_styles.jsonl"


def load_styles() -> list[dict]:
    return [json.loads(line) for line in STYLES.open(encoding="utf-8")]


def load_sets() -> dict[str, tuple[list[tuple[str, str]], list[bool]]]:
    """name -> (pairs of (response, reference), expected pass/fail for each)."""
    styles = load_styles()
    answer_styles = (
        [(row["response"], row["reference"]) for row in styles],
        [row["expected"] == "pass" for row in styles],
    )
    if not DATA.exists():
        return {"answer-styles": answer_styles}
    math500 = [json.loads(line) for line in (DATA / "math500.jsonl").open(encoding="utf-8")]
    qwen = [json.loads(line) for line in (DATA / "qwen_math_cot_100.jsonl").open(encoding="utf-8")]
    own = [(row["solution"], row["answer"]) for row in math500]
    mismatch = [
        (row["solution"], nxt["answer"])
        for row, nxt in zip(math500, math500[1:] + math500[:1], strict=True)
        if row["answer"].strip() != nxt["answer"].strip()
    ]
    samples = [(response, row["gt"]) for row in qwen for response in row["code"]]
    labels = [bool(label) for row in qwen for label in row["score"]]
    return {
        "math500-own": (own, [True] * len(own)),
        "math500-mismatch": (mismatch, [False] * len(mismatch)),
        "qwen-cot": (samples, labels),
        "answer-styles": answer_styles,
    }


def math_verify_child(set_name: str, wrap: bool) -> None:
    """Run in a fresh process: both passes of math-verify over one set; JSON on stdout."""
    logging.disable(logging.WARNING)  # math-verify logs every timeout it hits
    start = time.perf_counter()
    from math_verify import parse, verify

    imported = time.perf_counter()
    pairs, _ = load_sets()[set_name]
    passes, cpu = [], []
    for _ in range(2):
        begin, begin_cpu = time.perf_counter(), time.process_time()
        results = [
            bool(verify(parse(f"${ref}$" if wrap else ref), parse(response))) for response, ref in pairs
        ]
        passes.append(time.perf_counter() - begin)
        cpu.append(time.process_time() - begin_cpu)
    report = {
        "results": results,
        "cold": passes[0],
        "warm": passes[1],
        "cpu": cpu[0],
        "startup": imported - start,
    }
    print(json.dumps(report))


def run_math_verify(set_name: str, wrap: bool) -> dict:
    command = [sys.executable, __file__, "--child", set_name] + (["--wrap"] if wrap else [])
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:  # a worker replaced after a timeout: its time is lost
            continue
        total += times.user + times.system
    return total


def run_distillery(pairs: list[tuple[str, str]], workers: int, timeout: float) -> dict:
    from curate.verify.math import MathVerifier

    start = time.perf_counter()
    with MathVerifier(workers=workers, timeout=timeout) as verifier:
        verifier.wait_ready()
        # CPU time of the pool: the workers plus this (parent) process
        processes = [psutil.Process(worker.process.pid) for worker in verifier._workers] + [psutil.Process()]
        ready, cpu_before = time.perf_counter(), _cpu_seconds(processes)
        verdicts = list(verifier.map(pairs))
        cold_done, cpu_after = time.perf_counter(), _cpu_seconds(processes)
        list(verifier.map(pairs))
        warm_done = time.perf_counter()
    return {
        "verdicts": verdicts,
        "results": [v.status == "pass" for v in verdicts],
        "cold": cold_done - ready,
        "warm": warm_done - cold_done,
        "cpu": cpu_after - cpu_before,
        "startup": ready - start,
    }


def best_of(repeat: int, run, *args) -> dict:
    """The run with the fastest cold pass, against noise from other jobs on the machine."""
    return min((run(*args) for _ in range(max(1, repeat))), key=lambda result: result["cold"])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="distillery pool sizes (default: 1 2)"
    )
    parser.add_argument(
        "--timeout", type=float, default=5.0, help="seconds per check for distillery (default: 5)"
    )
    parser.add_argument(
        "--show-rows", action="store_true", help="print each row where a tool disagrees with the label"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="run each configuration N times, keep the fastest (default: 1)"
    )
    parser.add_argument("--sets", nargs="+", help="only these sets (default: all)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--wrap", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        math_verify_child(args.child, args.wrap)
        return 0

    print(
        f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"math-verify {version('math-verify')}, latex2sympy2_extended {version('latex2sympy2_extended')}, "
        f"sympy {version('sympy')}"
    )
    header = (
        f"{'set':<17} {'tool':<22} {'correct':>15} {'false+':>9} {'cold/s':>7} {'warm/s':>7} {'cpu ms':>7}"
        f" {'start s':>8}"
    )
    print(header)
    print("-" * len(header))
    sets = load_sets()
    if args.sets:
        sets = {name: sets[name] for name in args.sets}
    traps = [row["trap"] for row in load_styles()]
    for name, (pairs, expected) in sets.items():
        runs = {
            tool: best_of(args.repeat, run_math_verify, name, wrap)
            for tool, wrap in MATH_VERIFY_FORMS.items()
        }
        for workers in args.workers:
            runs[f"distillery {workers} worker{'s' if workers > 1 else ''}"] = best_of(
                args.repeat, run_distillery, pairs, workers, args.timeout
            )
        correct = {
            tool: sum(r == e for r, e in zip(run["results"], expected, strict=True))
            for tool, run in runs.items()
        }
        for tool, run in runs.items():
            false = sum(r and not e for r, e in zip(run["results"], expected, strict=True))
            false_text = str(false)
            if name == "answer-styles":
                false_text += f" [{sum(r and t for r, t in zip(run['results'], traps, strict=True))}]"
            print(
                f"{name:<17} {tool:<22} {correct[tool]:>5}/{len(pairs):<4} {correct[tool] / len(pairs):>5.1%} "
                f"{false_text:>9} {len(pairs) / run['cold']:>7.0f} {len(pairs) / run['warm']:>7.0f} "
                f"{1000 * run['cpu'] / len(pairs):>7.2f} {run['startup']:>8.2f}"
            )
        best = max(MATH_VERIFY_FORMS, key=lambda tool: (correct[tool], -runs[tool]["cold"]))
        for tool in runs:
            if tool.startswith("distillery"):
                cold = runs[best]["cold"] / runs[tool]["cold"]
                warm = runs[best]["warm"] / runs[tool]["warm"]
                cpu = runs[best]["cpu"] / runs[tool]["cpu"]
                print(
                    f"{'':<17} {tool} vs {best}: x{cold:.2f} checks/s cold, x{warm:.2f} warm, x{cpu:.1f} less CPU"
                )
        print()
        if args.show_rows:
            show_rows(name, pairs, expected, runs, f"distillery {args.workers[-1]} workers")
    return 0


def show_rows(name: str, pairs: list, expected: list[bool], runs: dict, distillery: str) -> None:
    """Every row where distillery or math-verify ($ref$) disagrees with the expected label."""
    key = distillery if distillery in runs else next(tool for tool in runs if tool.startswith("distillery"))
    ours, theirs = runs[key]["results"], runs["math-verify ($ref$)"]["results"]
    print(f"rows of {name} where a tool disagrees with the label (D = distillery, M = math-verify $ref$):")
    for i, ((_, reference), want) in enumerate(zip(pairs, expected, strict=True)):
        if ours[i] == want and theirs[i] == want:
            continue
        who = "".join(tag for tag, got in (("D", ours[i]), ("M", theirs[i])) if got != want)
        verdict = runs[key]["verdicts"][i]
        print(
            f"  [{i}] wrong={who:<2} label={want!s:<5} ref={reference!r} extracted={verdict.extracted!r} "
            f"-> {verdict.status}: {verdict.detail}"
        )
    print()


if __name__ == "__main__":
    sys.exit(main())
