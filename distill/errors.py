"""Reading what a user names on the command line or in a recipe, with one-line errors.

distill's commands print an exception whose class sets `user_error = True` as one line, without a
traceback (distill.cli); a traceback is for bugs. These helpers turn the usual mistakes (a missing
file, a folder that is not a model, a YAML typo) into such an error naming the path and what to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Any one of these is a tokenizer transformers can load from a model folder.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")


class UserError(Exception):
    """A mistake the user can fix: the message says which path and what to do."""

    user_error = True


def read_yaml(path: str | Path, what: str, error: type[Exception] = UserError) -> Any:
    """The parsed YAML file at `path` (`what` names it in messages: "recipe", "SFT config");
    a missing, unreadable or invalid file raises `error` with one line."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: no such {what} file") from None
    except IsADirectoryError:
        raise error(f"{path}: a folder, not a {what} file (give the YAML file)") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not a text file (a {what} is YAML)") from None
    except OSError as problem:
        raise error(f"{path}: cannot read the {what} ({problem.strerror or problem})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as problem:
        mark = getattr(problem, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(problem, "problem", None) or "invalid YAML"
        raise error(f"{path}: the {what} is not valid YAML{where}: {reason}; fix it and rerun") from None


def model_folder(model: str | Path, what: str = "model") -> Path:
    """`model` as a local Hugging Face model folder (config.json in it; nothing is downloaded)."""
    path = Path(model).expanduser()
    hint = "give a local Hugging Face model folder (config.json, weights and tokenizer files)"
    if not path.exists():
        raise UserError(f"{model}: no such {what} folder; {hint}")
    if not path.is_dir():
        raise UserError(f"{model}: a file, not a {what} folder; {hint}")
    if not (path / "config.json").is_file():
        raise UserError(f"{model}: not a {what} folder (no config.json); {hint}")
    # transformers makes an empty tokenizer from config.json alone rather than failing
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise UserError(
            f"{model}: no tokenizer files ({', '.join(TOKENIZER_FILES)}); save the tokenizer "
            "into the model folder (tokenizer.save_pretrained)"
        )
    return path


def first_line(error: BaseException) -> str:
    """The first non-empty line of an exception's message (transformers' run to many lines)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
