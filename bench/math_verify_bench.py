"""Math verification benchmark: distillery's verifier against math-verify on the same pairs, one run.

    .venv-bench/bin/python bench/math_verify_bench.py
    .venv-bench/bin/python bench/math_verify_bench.py --workers 1 2 --show-rows

Sets (../shared/data/math):
  math500-own       each MATH-500 solution against its own `answer` (500 pairs, all should pass)
  math500-mismatch  each solution against the next row's answer, equal strings skipped (all should fail)
  qwen-cot          the 800 Qwen2.5-Math CoT samples against `gt`, scored against the shipped `score`
                    labels (which come from another grader and have errors of their own)

math-verify gets the reference raw, as datasets store it, and wrapped in `$...$` (its best input
form). It runs in this process, as its documentation shows (parse + verify, default settings).
distillery runs its worker pool (1 and 2 workers). checks/s counts the checks only: the pool is
started and its workers are ready before the clock starts; the start-up time is printed apart.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / ".." / "shared" / "data" / "math"


def load_sets() -> dict[str, tuple[list[tuple[str, str]], list[bool]]]:
    """name -> (pairs of (response, reference), expected pass/fail for each)."""
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
    }


def run_math_verify(pairs: list[tuple[str, str]], wrap: bool) -> tuple[list[bool], float]:
    from math_verify import parse, verify

    start = time.perf_counter()
    results = []
    for response, reference in pairs:
        gold = parse(f"${reference}$" if wrap else reference)
        results.append(bool(verify(gold, parse(response))))
    return results, time.perf_counter() - start


def run_distillery(pairs: list[tuple[str, str]], workers: int, timeout: float) -> tuple[list, float, float]:
    from curate.verify.math import MathVerifier

    start = time.perf_counter()
    with MathVerifier(workers=workers, timeout=timeout) as verifier:
        verifier.wait_ready()
        ready = time.perf_counter()
        verdicts = list(verifier.map(pairs))
        done = time.perf_counter()
    return verdicts, done - ready, ready - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="distillery pool sizes (default: 1 2)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per check, both tools (default: 5)")
    parser.add_argument("--show-rows", action="store_true", help="print every row where a tool disagrees with the label")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # math-verify logs every timeout it hits

    print(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.machine()}")
    print(
        f"math-verify {version('math-verify')}, latex2sympy2_extended {version('latex2sympy2_extended')}, "
        f"sympy {version('sympy')}"
    )
    header = f"{'set':<18} {'tool':<30} {'correct':>15} {'checks/s':>9}"
    print(header)
    print("-" * len(header))
    summary = []
    for name, (pairs, expected) in load_sets().items():
        rows: dict[str, tuple[list[bool], float]] = {}
        for wrap in (False, True):
            results, seconds = run_math_verify(pairs, wrap)
            rows["math-verify ($ref$)" if wrap else "math-verify (raw ref)"] = (results, seconds)
        verdicts_by_workers = {}
        for workers in args.workers:
            verdicts, seconds, startup = run_distillery(pairs, workers, args.timeout)
            label = f"distillery {workers} worker{'s' if workers > 1 else ''}"
            rows[label] = ([v.status == "pass" for v in verdicts], seconds)
            verdicts_by_workers[workers] = verdicts
            print(f"  ({label}: pool start-up {startup:.2f} s, not counted)", file=sys.stderr)
        for tool, (results, seconds) in rows.items():
            correct = sum(r == e for r, e in zip(results, expected, strict=True))
            print(
                f"{name:<18} {tool:<30} {correct:>5}/{len(pairs):<4} {correct / len(pairs):>5.1%} "
                f"{len(pairs) / seconds:>9.0f}"
            )
        best_mv = max(
            (key for key in rows if key.startswith("math-verify")),
            key=lambda key: sum(r == e for r, e in zip(rows[key][0], expected, strict=True)),
        )
        mv_rate = len(pairs) / rows[best_mv][1]
        for workers in args.workers:
            label = f"distillery {workers} worker{'s' if workers > 1 else ''}"
            ratio = (len(pairs) / rows[label][1]) / mv_rate
            print(f"{'':<18} {label} / {best_mv}: x{ratio:.2f} checks/s")
            summary.append((name, label, ratio))
        print()
        if args.show_rows:
            show_rows(name, pairs, expected, rows, verdicts_by_workers[args.workers[-1]])
    return 0


def show_rows(name, pairs, expected, rows, verdicts) -> None:
    """Every row where distillery or the best math-verify form disagrees with the expected label."""
    distillery = [v.status == "pass" for v in verdicts]
    wrapped = rows["math-verify ($ref$)"][0]
    print(f"rows of {name} where a tool disagrees with the label (D = distillery, M = math-verify $ref$):")
    for i, ((response, reference), want) in enumerate(zip(pairs, expected, strict=True)):
        if distillery[i] == want and wrapped[i] == want:
            continue
        who = "".join(tag for tag, res in (("D", distillery[i]), ("M", wrapped[i])) if res != want)
        verdict = verdicts[i]
        print(
            f"  [{i}] wrong={who:<2} label={want!s:<5} ref={reference!r} extracted={verdict.extracted!r} "
            f"-> {verdict.status}: {verdict.detail}"
        )
    print()


if __name__ == "__main__":
    sys.exit(main())
