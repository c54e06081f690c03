"""`distillery verify math|code --input FILE --out FILE`: verify JSON lines, write them back with verdicts.

Each kind of verification is a sub-command of `verify`. A kind adds its parser with
`add_jsonl_arguments` and runs `verify_jsonl` with a function that turns the stream of rows into
a stream of Verdicts (same order); reading, error messages, the progress bar, the atomic write
and the summary table are shared.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from curate.errors import CurateError, InputError
from curate.verify.code import limits as code_limits
from curate.verify.math.pool import ANSWER_MODES, DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S
from curate.verify.result import STATUSES, Verdict

# The columns a verdict adds to each row (design §6).
VERDICT_FIELDS = ("status", "extracted", "detail")

RowChecker = Callable[[Iterable[dict]], Iterable[Verdict]]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="verify responses in a JSON-lines file (math answers, code)",
        description="Verify each row of a JSON-lines file and write the rows back, in order, with "
        "status, extracted and detail added.",
    )
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="KIND")
    math = kinds.add_parser(
        "math",
        help="check final answers against reference answers with sympy",
        description="Extract the final answer of each `response` and decide whether it equals `reference` "
        "(sympy, in worker processes with a time and memory limit).",
    )
    add_jsonl_arguments(math, timeout=DEFAULT_TIMEOUT_S)
    math.add_argument(
        "--response-field", default="response", help="field holding the model output (default: response)"
    )
    math.add_argument(
        "--reference-field", default="reference", help="field holding the gold answer (default: reference)"
    )
    math.add_argument(
        "--memory-mb",
        type=int,
        default=DEFAULT_MEMORY_MB,
        help="address space each worker may add (default: %(default)s)",
    )
    math.add_argument(
        "--answers",
        choices=ANSWER_MODES,
        default="auto",
        help="how responses hold their answer: bare (the response is the answer), trace (a box, answer tag or "
        "answer marker only) or auto (those, then a short response or its final sentence; default)",
    )
    math.set_defaults(func=run_math)

    code = kinds.add_parser(
        "code",
        help="run the code of each row against its tests in a sandbox",
        description="Take the code of each row (`code`, or the last fenced block of `response`) and run it "
        "against `tests` (a JSON test spec: stdin, call or assert) in a sandbox: bubblewrap, else unshare; "
        "refuses to run without one unless --unsafe-no-isolation is given. `detail` holds the per-case results.",
    )
    add_jsonl_arguments(code, timeout=code_limits.DEFAULT_TIME_LIMIT_S)
    code.add_argument(
        "--memory-mb",
        type=int,
        default=code_limits.DEFAULT_MEMORY_MB,
        help="address space of each process of a run, unless the spec sets memory_mb (default: %(default)s)",
    )
    code.add_argument(
        "--isolation",
        choices=("auto", "bwrap", "unshare"),
        default="auto",
        help="sandbox to use (default: auto)",
    )
    code.add_argument(
        "--unsafe-no-isolation",
        action="store_true",
        help="run the code with resource limits only, no sandbox: only for code you trust",
    )
    code.add_argument(
        "--judge-include",
        action="append",
        metavar="DIR",
        help="a folder of headers for C++ checkers and interactors (testlib.h); repeatable, searched before "
        "DISTILLERY_JUDGE_INCLUDE",
    )
    code.set_defaults(func=run_code)


def add_jsonl_arguments(parser: argparse.ArgumentParser, timeout: float) -> None:
    """The options every `verify KIND` shares."""
    parser.add_argument("--input", required=True, type=Path, help="JSON lines, one object per line")
    parser.add_argument(
        "--out", required=True, type=Path, help="where to write the verified rows (JSON lines)"
    )
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="worker processes (default: CPU count)"
    )
    parser.add_argument(
        "--timeout", type=float, default=timeout, help="seconds allowed per check (default: %(default)s)"
    )


def read_rows(path: Path) -> Iterator[dict]:
    """The JSON objects of a JSON-lines file; a bad line is an InputError naming file and line."""
    try:
        handle = path.open(encoding="utf-8")
    except OSError as error:
        raise InputError(str(path), f"cannot read: {error.strerror or error}") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise InputError(
                    str(path), f"not valid JSON ({error.msg}, column {error.colno})", line=number
                ) from None
            if not isinstance(row, dict):
                raise InputError(str(path), f"expected a JSON object, got {type(row).__name__}", line=number)
            yield row


def _count_lines(path: Path) -> int | None:
    try:
        with path.open("rb") as handle:
            return sum(1 for line in handle if line.strip())
    except OSError:
        return None


def verify_jsonl(input_path: Path, out_path: Path, check_rows: RowChecker) -> Counter[str]:
    """Stream rows from input_path through check_rows and write them with their verdicts to out_path.

    check_rows receives the rows lazily and must yield exactly one Verdict per row, in order.
    The output appears atomically (temporary file, then rename). Returns the count per status.
    """
    from tqdm import tqdm

    pending: deque[dict] = deque()

    def rows() -> Iterator[dict]:
        for row in read_rows(input_path):
            pending.append(row)
            yield row

    counts: Counter[str] = Counter()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = out_path.with_name(f".{out_path.name}.tmp")
    try:
        with temporary.open("w", encoding="utf-8") as out:
            verdicts = tqdm(
                check_rows(rows()), total=_count_lines(input_path), unit="row", desc="verify", file=sys.stderr
            )
            for verdict in verdicts:
                row = pending.popleft()
                row.update({name: getattr(verdict, name) for name in VERDICT_FIELDS})
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                counts[verdict.status] += 1
        if pending:
            raise RuntimeError(f"the checker returned {sum(counts.values())} verdicts for more rows")
        os.replace(temporary, out_path)
    finally:
        temporary.unlink(missing_ok=True)
    return counts


def print_summary(counts: Counter[str], seconds: float, out_path: Path) -> None:
    """The closing table: rows per status, then the throughput."""
    total = sum(counts.values())
    print(f"{'status':<18} {'rows':>8} {'share':>7}")
    for status in STATUSES:
        if counts[status]:
            print(f"{status:<18} {counts[status]:>8} {counts[status] / total:>7.1%}")
    rate = total / seconds if seconds > 0 else 0.0
    print(f"{'total':<18} {total:>8}   in {seconds:.1f} s ({rate:.0f} rows/s) -> {out_path}")


def run_math(args: argparse.Namespace) -> int:
    from curate.verify.math import MathVerifier

    if args.workers < 1 or args.timeout <= 0:
        raise CurateError("--workers must be at least 1 and --timeout positive")
    start = time.perf_counter()
    with MathVerifier(
        workers=args.workers, timeout=args.timeout, memory_mb=args.memory_mb, answers=args.answers
    ) as verifier:

        def check_rows(rows: Iterable[dict]) -> Iterable[Verdict]:
            return verifier.map((row.get(args.response_field), row.get(args.reference_field)) for row in rows)

        counts = verify_jsonl(args.input, args.out, check_rows)
    print_summary(counts, time.perf_counter() - start, args.out)
    return 0


def run_code(args: argparse.Namespace) -> int:
    from curate.verify.code import CodeVerifier

    if args.workers < 1 or args.timeout <= 0:
        raise CurateError("--workers must be at least 1 and --timeout positive")
    isolation = "none" if args.unsafe_no_isolation else args.isolation
    start = time.perf_counter()
    limits = {"time_limit_s": args.timeout, "memory_mb": args.memory_mb}
    with CodeVerifier(args.workers, isolation, judge_include=args.judge_include or (), **limits) as verifier:
        print(f"sandbox: {verifier.isolation}, {verifier.workers} worker(s)", file=sys.stderr)
        counts = verify_jsonl(args.input, args.out, verifier.map)
    print_summary(counts, time.perf_counter() - start, args.out)
    return 0
