"""`distillery eval MODEL --bench NAME...`: pass@1 of a model on benchmark files, per benchmark and
per domain, checked by the same verifiers the curate pipeline uses.

A benchmark is a shortcut name (`math500`, `aime24`, `aime25`, `amc23`, `gsm8k`, `humaneval`,
`codeforces`, resolved in the shared data folder or --data-dir) or any file `distillery curate`
reads (`name=path` names it). Each problem is sampled k times; pass@1 is the share of passing
samples per problem, averaged over problems (so k > 1 lowers the variance, not the bar). The
per-domain score pools the problems of every benchmark of that domain.
"""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from distill.generate.base import SamplingParams

# name -> (path inside the data folder, domain)
BENCHMARKS: dict[str, tuple[str, str]] = {
    "math500": ("math/math500.jsonl", "math"),
    "aime24": ("bench/aime24.jsonl", "math"),
    "aime25": ("bench/aime25.jsonl", "math"),
    "amc23": ("bench/amc23.jsonl", "math"),
    "gsm8k": ("bench/gsm8k_test.jsonl", "math"),
    "humaneval": ("code/humaneval.jsonl", "code"),
    "codeforces": ("code/codeforces.jsonl", "code"),
}


class EvalError(Exception):
    user_error = True


@dataclass(frozen=True)
class Bench:
    name: str
    path: Path
    domain: str | None = None  # None: each problem's own domain (user files)


@dataclass
class BenchResult:
    name: str
    domain: str
    problems: int
    k: int
    pass_at_1: float
    statuses: dict[str, int] = field(default_factory=dict)  # over all samples


@dataclass
class EvalReport:
    model: str
    params: dict[str, Any]
    benches: list[BenchResult]
    domains: dict[str, dict[str, float]]  # domain -> {"problems": n, "pass@1": x}
    samples: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "params": self.params,
            "benches": [asdict(b) for b in self.benches],
            "domains": self.domains,
        }


def default_data_dir() -> Path:
    """$DISTILLERY_DATA, else the shared data folder next to the repository (../shared/data)."""
    if os.environ.get("DISTILLERY_DATA"):
        return Path(os.environ["DISTILLERY_DATA"])
    return Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def resolve_bench(spec: str, data_dir: str | Path | None = None) -> Bench:
    """A shortcut name, a file path, or name=path."""
    name, _, path = spec.partition("=") if "=" in spec else ("", "", spec)
    if not name and spec in BENCHMARKS:
        relative, domain = BENCHMARKS[spec]
        full = Path(data_dir) if data_dir else default_data_dir()
        full = full / relative
        if not full.exists():
            raise EvalError(
                f"benchmark {spec}: {full} not found (pass --data-dir with the folder that holds {relative})"
            )
        return Bench(spec, full, domain)
    file = Path(path)
    if not file.exists():
        raise EvalError(f"benchmark {spec!r}: no such file, and not one of the names {', '.join(BENCHMARKS)}")
    return Bench(name or file.name.split(".")[0], file)


def evaluate(
    model: str,
    benches: list[Bench],
    params: SamplingParams,
    backend: str = "hf",
    backend_options: dict[str, Any] | None = None,
    style: str = "r1",
    limit: int | None = None,
    cache_path: str | Path | None = None,
    workers: int = 2,
    progress: bool = True,
    engine: Any = None,
) -> EvalReport:
    """Sample `params.n` responses per problem of every benchmark, verify them, and score.

    `engine`: an already loaded backend to sample from (left open; `model` then only names it),
    so a caller scoring many in-memory variants of one model (merge-search) loads it once.
    """
    from distill.generate.base import load_backend
    from distill.generate.cache import RequestCache
    from distill.generate.prompts import read_prompts
    from distill.generate.runner import sample_items, trace_row
    from distill.generate.verify import Check, verify

    loaded = []
    for bench in benches:
        items = read_prompts(str(bench.path), source=bench.name, domain=bench.domain)
        loaded.append((bench, items[:limit] if limit else items))
    everything = [item for _, items in loaded for item in items]

    owned = engine is None
    if owned:
        engine = load_backend(backend, model, **(backend_options or {}))
    cache = RequestCache(cache_path) if cache_path else None
    try:
        results, _ = sample_items(
            engine, everything, params, style, None, cache, progress, desc=f"eval {Path(model).name}"
        )
    finally:
        if owned:
            engine.close()
        if cache:
            cache.close()
    verdicts = verify(
        [Check(c.text, everything[i].reference, everything[i].tests) for i, _, c in results], workers
    )

    statuses: dict[int, list[str]] = {}  # problem index -> the status of each of its samples
    samples = []
    for (i, sample, completion), verdict in zip(results, verdicts, strict=True):
        statuses.setdefault(i, []).append(verdict.status)
        extra = {
            "verify_status": verdict.status,
            "verify_extracted": verdict.extracted,
            "verify_detail": verdict.detail,
        }
        samples.append(trace_row(everything[i], style, sample, completion, model, params, extra))

    bench_results, by_domain = [], {}
    offset = 0
    for bench, items in loaded:
        indices = range(offset, offset + len(items))
        offset += len(items)
        scores = [statuses[i].count("pass") / len(statuses[i]) for i in indices]
        counts = Counter(status for i in indices for status in statuses[i])
        domains = sorted({everything[i].domain for i in indices})
        bench_results.append(
            BenchResult(
                name=bench.name,
                domain=domains[0] if len(domains) == 1 else "mixed",
                problems=len(items),
                k=params.n,
                pass_at_1=sum(scores) / len(scores) if scores else 0.0,
                statuses=dict(sorted(counts.items())),
            )
        )
        for i, score in zip(indices, scores, strict=True):
            by_domain.setdefault(everything[i].domain, []).append(score)
    domains = {d: {"problems": len(s), "pass@1": sum(s) / len(s)} for d, s in sorted(by_domain.items())}
    params_dict = {**asdict(params), "backend": backend, "prompt_style": style, "limit": limit}
    return EvalReport(model, params_dict, bench_results, domains, samples)


def bench_table(report: EvalReport) -> str:
    from distill.generate.runner import format_table

    return format_table(
        ("bench", "domain", "problems", "k", "pass@1", "statuses"),
        [
            (
                b.name,
                b.domain,
                b.problems,
                b.k,
                b.pass_at_1,
                ", ".join(f"{s} {n}" for s, n in b.statuses.items()),
            )
            for b in report.benches
        ],
    )


def models_table(reports: dict[str, EvalReport]) -> str:
    """Models as rows, domains as columns (pass@1), like TinyR1's table."""
    from distill.generate.runner import format_table

    domains = sorted({d for report in reports.values() for d in report.domains})
    rows = [
        (label, *(report.domains.get(d, {}).get("pass@1") for d in domains))
        for label, report in reports.items()
    ]
    return format_table(("model", *domains), rows)


def register(sub: argparse._SubParsersAction) -> None:
    from distill.generate.cli import add_sampling_arguments

    parser = sub.add_parser(
        "eval",
        help="pass@1 of a model on benchmark files, per benchmark and per domain",
        description=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument(
        "model", metavar="MODEL", help="local model folder (hf, vllm) or served model name (openai)"
    )
    parser.add_argument(
        "--bench",
        nargs="+",
        required=True,
        metavar="NAME",
        help=f"benchmark names ({', '.join(BENCHMARKS)}), files, or name=file",
    )
    add_sampling_arguments(
        parser, "-k", "samples per problem (pass@1 is averaged over them)", temperature=0.6
    )
    parser.add_argument("--data-dir", help="folder holding the named benchmarks (default: ../shared/data)")
    parser.add_argument("--limit", type=int, help="only the first N problems of each benchmark")
    parser.add_argument("--out", help="write the scores as JSON")
    parser.add_argument("--samples", help="write every sample with its verdict (JSON lines)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from distill.generate.base import SamplingParams
    from distill.generate.cli import backend_options
    from distill.generate.runner import format_table, write_jsonl

    params = SamplingParams(
        n=args.n, temperature=args.temperature, top_p=args.top_p, max_tokens=args.max_tokens, seed=args.seed
    )
    benches = [resolve_bench(spec, args.data_dir) for spec in args.bench]
    report = evaluate(
        args.model,
        benches,
        params,
        args.backend,
        backend_options(args),
        args.prompt_style,
        args.limit,
        args.cache,
        args.workers,
        not args.quiet,
    )
    print(bench_table(report))
    print()
    print(
        format_table(
            ("domain", "problems", "pass@1"),
            [(d, int(v["problems"]), v["pass@1"]) for d, v in report.domains.items()],
        )
    )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    if args.samples:
        write_jsonl(report.samples, args.samples)
    return 0
