"""`distillery sft` (one domain) and `distillery branch` (every domain of a workspace).

Both run unchanged under `torchrun --nproc-per-node N` for FSDP on N GPUs (or N CPU processes).
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "sft_tinyr1.yaml"


def _add_training_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--base", required=True, help="local Hugging Face causal LM folder (model + tokenizer)"
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--config", help=f"SFT YAML config (default: TinyR1 recipe, {DEFAULT_RECIPE.name}); flags override it"
    )
    parser.add_argument(
        "--max-steps", type=int, help="stop after this many optimizer steps (overrides epochs)"
    )
    parser.add_argument("--epochs", type=float, help="passes over the data")
    parser.add_argument("--lr", type=float, help="peak learning rate")
    parser.add_argument(
        "--seq-len", type=int, help="longest sample in tokens (longer ones: config `overlong`)"
    )
    parser.add_argument("--batch-tokens", type=int, help="token budget of one packed micro-batch")
    parser.add_argument("--grad-accum", type=int, help="micro-batches per optimizer step on each rank")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--no-resume", action="store_true", help="ignore checkpoints already in --out")


def register(subparsers) -> None:
    sft = subparsers.add_parser(
        "sft",
        help="fine-tune a student on one domain's shards",
        description="Full fine-tune of --base on the parquet shards in --data (train-*.parquet, val-*.parquet); "
        "writes the HF model, tokenizer, metrics.jsonl and summary.json to --out.",
    )
    sft.add_argument("--data", required=True, help="folder of shards, e.g. WS/shards/math")
    _add_training_flags(sft)
    sft.set_defaults(func=run_sft)

    branch = subparsers.add_parser(
        "branch",
        help="fine-tune one student per domain of a workspace (branch phase)",
        description="Runs `sft` for every WS/shards/<domain>/ into OUT/<domain>/, with the config's "
        "per-domain epochs (TinyR1: 5 for math and science, 15 for code) unless --epochs is given.",
    )
    branch.add_argument("workspace", metavar="WS", help="workspace folder written by `distillery curate`")
    branch.add_argument(
        "--domains",
        nargs="+",
        metavar="DOMAIN",
        help="only these domains, space- or comma-separated (default: all)",
    )
    _add_training_flags(branch)
    branch.set_defaults(func=run_branch)


def load_config(args: argparse.Namespace, domain: str | None = None):
    from distill.sft.config import SFTConfig

    overrides = {
        "max_steps": args.max_steps,
        "lr": args.lr,
        "seq_len": args.seq_len,
        "batch_tokens": args.batch_tokens,
        "grad_accum": args.grad_accum,
        "seed": args.seed,
        "epochs": args.epochs,
    }
    config = SFTConfig.from_yaml(args.config or DEFAULT_RECIPE)
    if args.seq_len and not args.batch_tokens and args.seq_len > config.batch_tokens:
        overrides["batch_tokens"] = args.seq_len  # a row must hold the longest sample
    if domain is not None and args.epochs is None:
        overrides["epochs"] = config.epochs_for(domain)
    return SFTConfig.from_dict(config.to_dict(), source=str(args.config or DEFAULT_RECIPE), **overrides)


def format_table(headers: list[str], rows: list[list]) -> str:
    cells = [headers] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _loss(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _is_main() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


def _quiet_transformers() -> None:
    """Keep one progress bar per run (ours): no per-file bars for loading and saving weights."""
    from transformers.utils import logging

    logging.disable_progress_bar()


def run_sft(args: argparse.Namespace) -> int:
    from distill.sft.trainer import train

    _quiet_transformers()
    result = train(load_config(args), args.data, args.base, args.out, resume=not args.no_resume)
    if _is_main():
        fit = result.fit
        rows = [
            ["samples", f"{fit.kept} kept, {fit.dropped} dropped, {fit.truncated} truncated (over seq_len)"],
            ["packed rows", result.rows],
            [
                "steps",
                f"{result.steps}" + (f" (resumed at {result.resumed_from})" if result.resumed_from else ""),
            ],
            ["train loss", f"{_loss(result.first_loss)} -> {_loss(result.last_loss)}"],
            ["val loss", _loss(result.val_loss)],
            ["tokens/s", f"{result.tokens_per_s:,.0f}"],
            ["time", f"{result.seconds:.1f}s"],
            ["model", str(result.out_dir)],
        ]
        print(format_table(["sft", ""], rows))
    return 0


def workspace_domains(workspace: str | Path) -> dict[str, Path]:
    """The domain shard folders of a workspace: WS/shards/<domain>/ holding train-*.parquet."""
    from curate.workspace import Workspace
    from distill.sft.data import SFTDataError

    root = Workspace.open(workspace).root / "shards"
    folders = sorted(root.iterdir()) if root.is_dir() else []
    domains = {p.name: p for p in folders if p.is_dir() and any(p.glob("train-*.parquet"))}
    if not domains:
        raise SFTDataError(f"{root}: no <domain>/train-*.parquet shards; run the curate `shard` stage first")
    return domains


def run_branch(args: argparse.Namespace) -> int:
    from distill.sft.data import SFTDataError
    from distill.sft.trainer import train

    domains = workspace_domains(args.workspace)
    _quiet_transformers()
    if args.domains:
        from curate.errors import did_you_mean

        chosen = [d.strip() for item in args.domains for d in item.split(",") if d.strip()]
        missing = sorted(set(chosen) - set(domains))
        if missing:
            raise SFTDataError(
                f"{args.workspace}: no shards for domain(s) {missing}{did_you_mean(missing[0], domains)}; "
                f"found {sorted(domains)}"
            )
        domains = {d: domains[d] for d in chosen}
    table = []
    for domain, data in domains.items():
        out = Path(args.out) / domain
        if (out / "summary.json").is_file():
            table.append([domain, "done earlier", "", "", "", "", str(out)])
            continue
        config = load_config(args, domain)
        if _is_main():
            print(f"branch: training the {domain} student, epochs {config.epochs:g} -> {out}")
        result = train(config, data, args.base, out, resume=not args.no_resume)
        table.append(
            [
                domain,
                result.fit.kept,
                result.steps,
                f"{_loss(result.first_loss)} -> {_loss(result.last_loss)}",
                _loss(result.val_loss),
                f"{result.tokens_per_s:,.0f}",
                str(out),
            ]
        )
    if _is_main():
        print(
            format_table(["domain", "samples", "steps", "train loss", "val loss", "tokens/s", "model"], table)
        )
    return 0
