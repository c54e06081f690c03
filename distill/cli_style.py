"""The one CLI style of `distillery` (docs/cli.md), applied to every mounted command at once so
that no command can miss it: `--quiet` on every command, defaults shown in `--help`,
`distillery --version`, and "did you mean" when a name from a closed set (a command, a choice)
is mistyped."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
from collections.abc import Iterator
from importlib import metadata

from curate.errors import did_you_mean  # the one hint for every closed set of names

QUIET_HELP = "no progress bars or info logs (results, warnings and errors still print)"
_INVALID_CHOICE = re.compile(r"invalid choice: '(?P<word>[^']*)' \(choose from (?P<choices>.*)\)$")


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose invalid-choice errors suggest the closest choice. Sub-command
    parsers are made with the class of their parent, so the whole tree gets it."""

    def error(self, message: str) -> None:  # type: ignore[override]
        found = _INVALID_CHOICE.search(message)
        if found:
            # Python 3.11 quotes the choices, later versions may not: take both
            choices = [c.strip().strip("'") for c in found["choices"].split(",")]
            message += did_you_mean(found["word"], choices)
        super().error(message)


def _show_default(action: argparse.Action) -> None:
    """Append '(default: X)' to an option's help unless the help already says its default."""
    # Identity, not equality: a default of 0 equals False but is worth showing.
    if any(action.default is v for v in (None, False, argparse.SUPPRESS)) or action.help == argparse.SUPPRESS:
        return
    if isinstance(action, argparse._VersionAction) or not action.option_strings:
        return
    text = action.help or ""
    if "default" not in text:
        action.help = (text + " " if text else "") + "(default: %(default)s)"


def subparsers(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    """Every sub-command parser below `parser` (nested ones too), as (`a b`, parser)."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found.append((name, child))
                found += [(f"{name} {n}", p) for n, p in subparsers(child)]
    return found


def apply(parser: argparse.ArgumentParser) -> None:
    """Give the tree under `parser` the one style (after every command has registered)."""
    parser.add_argument("--version", action="version", version=f"distillery {metadata.version('distillery')}")
    for _, child in subparsers(parser):
        for action in child._actions:
            _show_default(action)
        leaf = not any(isinstance(a, argparse._SubParsersAction) for a in child._actions)
        if leaf and not any(a.dest == "quiet" for a in child._actions):
            child.add_argument("--quiet", action="store_true", help=QUIET_HELP)


QUIET_ENVIRONMENT = {
    "TQDM_DISABLE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
}


@contextlib.contextmanager
def quiet_environment(active: bool = True) -> Iterator[None]:
    """What --quiet means for every command, whatever its own code does with it: no tqdm bars,
    no Hugging Face progress bars or info logs, Python logging at WARNING. The environment and
    the log level are restored afterwards."""
    if not active:
        yield
        return
    saved = {key: os.environ.get(key) for key in QUIET_ENVIRONMENT}
    root = logging.getLogger()
    level = root.level
    os.environ.update(QUIET_ENVIRONMENT)
    root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.setLevel(level)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
