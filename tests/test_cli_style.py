"""One CLI style (docs/cli.md): every command of the argparse tree distill/cli.py mounts accepts
--quiet, shows its defaults in --help, and a mistyped name from a closed set gets a suggestion."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from curate.errors import did_you_mean
from distill import cli_style
from distill.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]
COMMANDS = cli_style.subparsers(build_parser())
LEAVES = [
    (n, p) for n, p in COMMANDS if not any(isinstance(a, argparse._SubParsersAction) for a in p._actions)
]


def test_the_walk_finds_every_mounted_command():
    names = {n for n, _ in COMMANDS}
    assert {"curate", "export", "sql", "merge", "sft", "branch", "generate", "eval", "run"} <= names
    assert {"verify math", "verify code"} <= names  # nested ones too


@pytest.mark.parametrize("name,parser", LEAVES, ids=[n for n, _ in LEAVES])
def test_every_command_accepts_quiet_and_shows_its_defaults(name, parser):
    quiet = [a for a in parser._actions if "--quiet" in a.option_strings]
    assert quiet and quiet[0].dest == "quiet" and quiet[0].default is False, f"{name}: --quiet"
    text = " ".join(parser.format_help().split())  # argparse wraps lines
    for action in parser._actions:
        if any(action.default is v for v in (None, False, argparse.SUPPRESS)) or not action.option_strings:
            continue
        flag = max(action.option_strings, key=len)
        help_text = " ".join(((action.help or "") % {**vars(action), "prog": parser.prog}).split())
        assert "default" in help_text.lower() or f"(default: {action.default})" in text, f"{name} {flag}"
        assert "default" in text[text.index(flag) :], f"{name} {flag}: default not in --help"


def test_a_default_of_zero_is_shown():
    parser = argparse.ArgumentParser()
    command = parser.add_subparsers().add_parser("pairs")
    command.add_argument("--seed", type=int, default=0, help="the seed")
    cli_style.apply(parser)
    assert "(default: 0)" in " ".join(command.format_help().split())


def test_quiet_silences_progress_bars_of_a_command_that_had_none_of_its_own(tmp_path):
    data = tmp_path / "answers.jsonl"
    data.write_text("".join(f'{{"response": "\\\\boxed{{{i}}}", "reference": "{i}"}}\n' for i in range(5)))
    command = [sys.executable, "-m", "distill.cli", "verify", "math", "--input", str(data), "--workers", "1"]
    env = {k: v for k, v in os.environ.items() if k not in cli_style.QUIET_ENVIRONMENT}

    def stderr(*extra: str) -> str:
        done = subprocess.run(
            [*command, "--out", str(tmp_path / f"v{len(extra)}.jsonl"), *extra],
            capture_output=True,
            text=True,
            cwd=REPO,
            env=env,
        )
        assert done.returncode == 0, done.stderr
        assert "pass" in done.stdout  # the result still prints
        return done.stderr

    assert "row/s" in stderr()
    assert "row/s" not in stderr("--quiet")


def test_quiet_in_process_gives_the_callers_environment_back(tmp_path, monkeypatch, capsys):
    for key in cli_style.QUIET_ENVIRONMENT:
        monkeypatch.delenv(key, raising=False)
    main(["curate", str(tmp_path), "--out", str(tmp_path / "ws"), "--until", "verfy", "--quiet"])
    assert not any(key in os.environ for key in cli_style.QUIET_ENVIRONMENT)


def test_version():
    done = subprocess.run(
        [sys.executable, "-m", "distill.cli", "--version"], capture_output=True, text=True, cwd=REPO
    )
    assert done.returncode == 0 and done.stdout.startswith("distillery ")


@pytest.mark.parametrize(
    "argv,hint",
    [
        (["curat"], "'curate'"),  # commands
        (["verify", "mth", "x"], "'math'"),  # nested commands
        (["sql", "WS", "--format", "jsn"], "'json'"),  # choices
        (["generate", "--backend", "vlm", "--teacher", "t", "--prompts", "p", "--out", "o"], "'vllm'"),
        (["run", "R", "--out", "o", "--from", "curat"], "'curate'"),
    ],
)
def test_a_mistyped_choice_gets_did_you_mean(argv, hint, capsys):
    with pytest.raises(SystemExit):
        main(argv)
    assert f"(did you mean {hint}?)" in capsys.readouterr().err


def test_closed_sets_checked_in_code_say_did_you_mean_too(capsys, tmp_path):
    assert main(["curate", str(tmp_path), "--out", str(tmp_path / "ws"), "--until", "verfy"]) == 2
    assert "(did you mean 'verify'?)" in capsys.readouterr().err
    assert did_you_mean("zzz", ["math", "code"]) == ""
