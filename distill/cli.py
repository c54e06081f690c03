"""The `distillery` console script: one argparse tree, each package mounts its own commands.

Each module in MOUNTS exposes `register(subparsers)`, which adds its sub-commands and sets
`func` on them. Registration must stay cheap (argparse only): heavy imports such as torch
happen inside the command function, so `distillery sql` starts in milliseconds.
"""

from __future__ import annotations

import argparse
import importlib
import sys

MOUNTS = [
    "curate.cli",
    "curate.export",
    "sql.shell",
    "merge.cli",
    "distill.sft.cli",
    "distill.generate.cli",
    "distill.evaluate",
    "curate.verify.cli",
    "curate.longctx.cli",
    "distill.recipe.cli",
    "distill.demo.run",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="distillery",
        description="Data-centric distillation of reasoning models: curate, inspect with SQL, train, merge.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in MOUNTS:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        # Packages must not import each other, so "a problem the user can fix" is a convention,
        # not a shared base class: such exceptions set `user_error = True` and print without a traceback.
        if not getattr(error, "user_error", False):
            raise
        print(f"distillery {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
