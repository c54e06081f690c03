"""The `distillery` console script: one argparse tree, each package mounts its own commands.

Each module in MOUNTS exposes `register(subparsers)`, which adds its sub-commands and sets
`func` on them. Registration must stay cheap (argparse only): heavy imports such as torch
happen inside the command function, so `distillery sql` starts in milliseconds.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import sys

from distill import cli_style

MOUNTS = [
    "curate.cli",
    "curate.export",
    "sql.shell",
    "merge.cli",
    "distill.sft.cli",
    "distill.generate.cli",
    "distill.evaluate",
    "distill.merge_search",
    "curate.verify.cli",
    "curate.longctx.cli",
    "distill.recipe.cli",
    "distill.demo.run",
]

# OS errors that a user fixes on the machine, and what to do about each.
MACHINE_ERRORS = {
    errno.ENOSPC: "free some space",
    errno.EDQUOT: "free some of your disk quota",
    errno.EACCES: "check the permissions of that path",
    errno.EPERM: "check the permissions of that path",
    errno.EROFS: "write to a folder on a writable filesystem",
}


def build_parser() -> argparse.ArgumentParser:
    parser = cli_style.Parser(
        prog="distillery",
        description="Data-centric distillation of reasoning models: curate, inspect with SQL, train, merge.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in MOUNTS:
        importlib.import_module(module).register(sub)
    cli_style.apply(parser)  # --quiet, defaults in --help, --version, did-you-mean: docs/cli.md
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # --quiet acts before the imports that read the environment once (tqdm, transformers), and
    # only for this command (a caller of main() gets its environment back).
    with cli_style.quiet_environment("--quiet" in argv):
        return _run(argv)


def _run(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as error:
        # The machine, not the code: a full disk, a permission, a read-only filesystem.
        if error.errno not in MACHINE_ERRORS:
            raise
        where = f"{error.filename}: " if error.filename else ""
        print(
            f"distillery {args.command}: error: {where}{error.strerror}; {MACHINE_ERRORS[error.errno]}, "
            "then rerun",
            file=sys.stderr,
        )
        return 1
    except Exception as error:
        # Packages must not import each other, so "a problem the user can fix" is a convention,
        # not a shared base class: such exceptions set `user_error = True` and print without a traceback.
        if not getattr(error, "user_error", False):
            raise
        print(f"distillery {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
