"""`distillery merge CONFIG.yaml --out DIR`: check, then stream, a (chained) mergekit-style merge."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from pathlib import Path

from .errors import MergeError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "merge",
        help="merge models from a mergekit-style YAML config (steps may chain)",
        description="Merge safetensors checkpoints tensor by tensor. Methods: linear, task_arithmetic, "
        "ties, dare_ties, dare_linear, breadcrumbs, breadcrumbs_ties, della, della_linear, sce, slerp, "
        "nuslerp, multislerp, karcher, model_stock, nearswap, arcee_fusion, passthrough (with slices: "
        "layer stacking). Every check (architecture, tensor names, shapes, layer ranges, vocabularies, "
        "tied embeddings, parameters) runs before any merging.",
    )
    parser.add_argument(
        "config", help="merge config (YAML): merge_method, base_model, models, parameters, or steps:"
    )
    parser.add_argument("--out", required=True, help="folder for the merged model (the last step's output)")
    parser.add_argument("--steps-dir", help="folder for the outputs of earlier steps (default: OUT/steps)")
    parser.add_argument(
        "--shard-size",
        default="5GB",
        type=parse_size,
        help="largest safetensors shard to write, e.g. 2GB or 500MB (default 5GB)",
    )
    parser.add_argument(
        "--seed", type=int, help="seed for DARE masks and sampled quantiles (overrides the config)"
    )
    parser.add_argument(
        "--check", action="store_true", help="run the checks and print the plan, merge nothing"
    )
    parser.add_argument(
        "--force", action="store_true", help="write into a non-empty --out that is not an earlier merge"
    )
    parser.set_defaults(func=run)


MERGE_MARKER = ".distillery-merge.json"  # says a folder is an earlier merge's output


def refuse_foreign(out: Path, force: bool) -> None:
    """A non-empty --out that is not an earlier merge (a model, a dataset) is refused unless
    `force`: the merge would mix its shards and config with what is there."""
    if force or not out.is_dir() or (out / MERGE_MARKER).exists():
        return
    entries = sorted(p.name for p in out.iterdir())
    if entries:
        shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
        raise MergeError(
            f"{out}: not empty and not an earlier merge (holds {shown}); "
            "choose a new or empty --out, or pass --force to write into it anyway"
        )


def parse_size(text: str) -> int:
    """'5GB' -> 5_000_000_000 (decimal units; also KB, MB, K, M, G and plain bytes)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)b?\s*", text.lower())
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 5GB or 500MB)")
    scale = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}[match.group(2)]
    return int(float(match.group(1)) * scale)


def run(args: argparse.Namespace) -> int:
    # A merge is a long series of large, memory-bound tensor ops. Between them OpenMP threads spin
    # by default, and on a shared machine spinning threads starve each other (a busy 2-core box ran
    # a ties merge 4x slower). Letting them sleep costs microseconds per op. Set before torch loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from .api import run_step
    from .plan import plan_config

    _show_warnings()
    out = Path(args.out)
    if not args.check:
        refuse_foreign(out, args.force)
    plans = plan_config(args.config, args.out, steps_dir=args.steps_dir, seed=args.seed)
    for plan in plans:
        inputs = ", ".join(info.label for info in plan.inputs)
        print(
            f"step {plan.step.name}: {plan.method.name} of {inputs}: checks passed "
            f"({len(plan.tensors)} tensors, {_size(plan.total_bytes)})",
            file=sys.stderr,
        )
        for note in plan.notes:
            print(f"  note: {note}", file=sys.stderr)
    if args.check:
        return 0
    out.mkdir(parents=True, exist_ok=True)  # marked first: a merge stopped half-way may be rerun
    (out / MERGE_MARKER).write_text(json.dumps({"config": str(args.config)}) + "\n")
    results = [run_step(plan, args.shard_size, progress=True) for plan in plans]
    rows = [
        [
            r.name,
            r.method,
            str(len(r.inputs)),
            str(r.tensors),
            _size(r.bytes),
            f"{r.seconds:.1f}",
            str(r.out_dir),
        ]
        for r in results
    ]
    print(table(["step", "method", "inputs", "tensors", "size", "seconds", "output"], rows))
    return 0


def _show_warnings() -> None:
    logger = logging.getLogger("merge")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("distillery merge: warning: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False


def _size(count: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count} GB"


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain fixed-width table."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in [headers, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
