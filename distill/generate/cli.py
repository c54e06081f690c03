"""`distillery generate --teacher MODEL --prompts FILE --out FILE`."""

from __future__ import annotations

import argparse
import json

from distill.generate.base import SamplingParams


def json_object(text: str) -> dict:
    """argparse type: a JSON object given on the command line."""
    try:
        value = json.loads(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not JSON: {error}") from error
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {type(value).__name__}")
    return value


def add_sampling_arguments(
    parser: argparse.ArgumentParser, n_flag: str, n_help: str, temperature: float
) -> None:
    """Sampling and backend options shared by `generate` and `eval`."""
    parser.add_argument(
        "--backend",
        choices=("vllm", "openai", "hf"),
        default="hf",
        help="vllm in-process (GPU, extra `vllm`), an OpenAI-compatible server, or transformers",
    )
    parser.add_argument(n_flag, dest="n", type=int, default=1, help=n_help)
    parser.add_argument("--temperature", type=float, default=temperature, help="0 = greedy")
    parser.add_argument("--top-p", type=float, default=0.95)
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=SamplingParams.max_tokens,
        help="new tokens per sample (R1-style traces need tens of thousands)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--prompt-style",
        choices=("r1", "raw"),
        default="r1",
        help="r1: append the answer-format instruction of the problem's domain; raw: the problem as is",
    )
    parser.add_argument("--concurrency", type=int, default=32, help="openai: requests in flight")
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1", help="openai: the server's /v1 URL")
    parser.add_argument("--api-key", help="openai: bearer token (default: $OPENAI_API_KEY)")
    parser.add_argument(
        "--endpoint",
        choices=("chat", "completions"),
        default="chat",
        help="openai: /v1/chat/completions or /v1/completions",
    )
    parser.add_argument("--max-retries", type=int, default=6, help="openai: retries of a transient failure")
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="openai: seconds to wait for the server (streamed: the longest silence between two chunks)",
    )
    parser.add_argument(
        "--extra-body",
        type=json_object,
        metavar="JSON",
        help='openai: more request fields, e.g. \'{"top_k": 20, "min_p": 0, "repetition_penalty": 1.05, '
        '"chat_template_kwargs": {"enable_thinking": true}}\' (part of the cache key)',
    )
    parser.add_argument(
        "--stream",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="openai: stream responses, so that a long generation is never cut by the timeout",
    )
    parser.add_argument("--batch-size", type=int, default=16, help="hf: prompts per generate() call")
    parser.add_argument("--tensor-parallel-size", type=int, default=1, help="vllm: GPUs per model")
    parser.add_argument(
        "--cache", help="per-request cache, a SQLite file (generate: default OUT.cache.sqlite; eval: none)"
    )
    parser.add_argument("--workers", type=int, default=2, help="verifier worker processes")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def backend_options(args: argparse.Namespace) -> dict:
    if args.backend == "openai":
        return {
            "base_url": args.base_url,
            "api_key": args.api_key,
            "concurrency": args.concurrency,
            "endpoint": args.endpoint,
            "max_retries": args.max_retries,
            "timeout": args.timeout,
            "extra_body": args.extra_body,
            "stream": args.stream,
        }
    if args.backend == "hf":
        return {"batch_size": args.batch_size}
    return {"tensor_parallel_size": args.tensor_parallel_size}


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "generate",
        help="sample teacher traces for a prompt file (optionally with rejection sampling)",
        description="Sample n responses per problem from a teacher and write them as trace rows (JSON lines). "
        "Finished requests are cached, so rerunning a killed command only sends what is missing.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--teacher", required=True, metavar="MODEL", help="model name (server/hub) or local path"
    )
    parser.add_argument(
        "--prompts", required=True, metavar="FILE", help="problems: any file `distillery curate` reads"
    )
    parser.add_argument("--out", required=True, metavar="FILE", help="output JSON lines (trace rows)")
    add_sampling_arguments(parser, "-n", "samples per problem", temperature=0.6)
    parser.add_argument(
        "--budget",
        type=int,
        metavar="M",
        help="rejection sampling: keep sampling a problem with no passing sample, n at a time, "
        "up to M samples (needs reference answers or tests)",
    )
    parser.add_argument(
        "--verify", action="store_true", help="verify every sample (status in meta) without resampling"
    )
    parser.add_argument("--limit", type=int, help="only the first N problems")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from distill.generate.base import SamplingParams, load_backend
    from distill.generate.cache import RequestCache
    from distill.generate.prompts import read_prompts
    from distill.generate.rejection import rejection_sample
    from distill.generate.runner import format_table, sample_items, trace_row, write_jsonl

    params = SamplingParams(
        n=args.n, temperature=args.temperature, top_p=args.top_p, max_tokens=args.max_tokens, seed=args.seed
    )
    items = read_prompts(args.prompts)[: args.limit]
    out = Path(args.out)
    cache_path = Path(args.cache) if args.cache else out.with_name(out.name + ".cache.sqlite")
    backend = load_backend(args.backend, args.teacher, **backend_options(args))
    progress = not args.quiet
    with RequestCache(cache_path) as cache:
        try:
            if args.budget is not None or args.verify:
                budget = args.budget if args.budget is not None else params.n
                rows, rounds, stats = rejection_sample(
                    backend, items, params, budget, args.prompt_style, cache, progress, args.workers
                )
            else:
                results, stats = sample_items(
                    backend, items, params, args.prompt_style, None, cache, progress
                )
                rows = [
                    trace_row(items[i], args.prompt_style, s, c, args.teacher, params) for i, s, c in results
                ]
                rounds = []
        finally:
            backend.close()
    write_jsonl(rows, out)

    reasons = ", ".join(f"{k} {v}" for k, v in sorted(stats.finish_reasons.items()))
    print(
        format_table(
            ("problems", "samples", "cached", "generated", "finish reasons", "seconds"),
            [(len(items), len(rows), stats.cached, stats.generated, reasons or "-", round(stats.seconds, 1))],
        )
    )
    if rounds:
        print()
        print(
            format_table(
                ("round", "problems", "samples", "passed", "newly solved", "unsolved"),
                [(r.round, r.problems, r.samples, r.passed, r.solved, r.unsolved) for r in rounds],
            )
        )
    print(f"\nwrote {len(rows)} rows to {out} (cache: {cache_path})")
    return 0
