"""`distillery run RECIPE.yaml [--out DIR] [--from STEP] [--quiet]`."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from distill.recipe.schema import GROUPS


def eval_table(table: dict[str, dict[str, float]]) -> str:
    """Models as rows, domains as columns (pass@1), like TinyR1's table."""
    from distill.generate.runner import format_table

    domains = sorted({d for scores in table.values() for d in scores})
    return format_table(
        ("model", *domains), [(label, *(scores.get(d) for d in domains)) for label, scores in table.items()]
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a recipe: curate -> branch SFT per domain -> merge -> eval (resumable)",
        description="Run every step of RECIPE.yaml into --out; steps already done with the same settings are "
        "skipped, so a killed run resumes where it stopped. Prints and writes OUT/results.json: models x domains.",
    )
    parser.add_argument("recipe", metavar="RECIPE.yaml")
    parser.add_argument("--out", help="output folder (default: runs/<recipe name>)")
    parser.add_argument("--from", dest="start", choices=GROUPS, help="redo this step and every later one")
    parser.add_argument("--quiet", action="store_true", help="no progress bars (the per-step lines stay)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from distill.recipe.plan import run_recipe

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    results = run_recipe(args.recipe, args.out, args.start, progress=not args.quiet)
    print()
    print(eval_table(results["eval"]))
    if results.get("variants"):
        from distill.recipe.variants import comparison_table

        print("\nvariants (the models a variant made itself, pass@1, and what each was trained on):")
        print(comparison_table(results["variants"]["table"]))
    executed, steps = len(results["steps_executed"]), len(results["step_seconds"])
    reused = f"; {steps - executed} of {steps} steps reused" if executed < steps else ""
    print(
        f"\nresults: {Path(results['out']) / 'results.json'} ({results['seconds']:.0f}s, "
        f"{results['cpu_seconds']:.0f}s CPU this run{reused}; "
        f"{sum(s or 0 for s in results['step_seconds'].values()):.0f}s in all steps when they ran)"
    )
    return 0
