"""Trusted judge programs: testlib-style checkers and interactors (host side).

A judge program follows the Codeforces/testlib convention: it is run as `judge input output answer`
(three file paths) and its exit code is the verdict: 0 accepted, 1 wrong answer, 2 presentation
error, 3 the judge itself failed (anything else is a failed judge too); its message is on stderr.
A checker reads the solution's output from `output`; an interactor talks to the solution over its
stdin and stdout (cross-wired with the solution's) and may write a log to `output`.

In a spec (`checker` or `interactor`):

    {"language": "cpp", "source": "..."}      C++ (testlib.h found on the include path, see below)
    {"language": "python", "source": "..."}   a Python program, run by the sandbox's interpreter
    {"command": ["/path/checker", ...]}       a program built elsewhere, or one on the sandbox's
                                               PATH (arguments that name files here are copied too)
    "..."                                     an interactor as plain text: a Python program
                                               (a checker as plain text stays a Python function,
                                               `check(input, expected, output)`, see specs.py)

C++ judges are compiled here, on the host, once per machine (cached by the hash of the source,
flags, compiler and include path); commands' files are copied into the same cache by content. The
cache folder is the one place of the host that the sandbox sees besides the system: judges run in
a sandboxed runner of their own, never in the solution's. `testlib.h` cannot be shipped with
distillery; a user's copy is found through the include path: `CodeVerifier(judge_include=[DIR])`
or the `DISTILLERY_JUDGE_INCLUDE` environment variable (folders separated by `:`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from curate.verify.code import languages

JUDGE_LANGUAGES = ("cpp", "python")
INCLUDE_ENV = "DISTILLERY_JUDGE_INCLUDE"
COMPILE_TIMEOUT_S = 300.0  # testlib.h alone takes seconds to compile; this runs once per judge
# Where the judge finds its files in its runner ({root} is the runner's folder, /tmp when sandboxed).
FILE_ARGS = ("{root}/input.txt", "{root}/output.txt", "{root}/answer.txt")


class JudgeError(ValueError):
    """A judge that cannot be used (does not compile, names a missing file): the reference's fault."""


class JudgeToolMissing(RuntimeError):
    """The compiler a judge needs is not installed here: an `error`, never a verdict."""


def validate(value: object, field: str) -> str | None:
    """Why `value` is not a judge program spec (a mapping), or None."""
    if not isinstance(value, Mapping):
        return f"{field}: expected an object with language and source, or command"
    if "command" in value:
        command = value["command"]
        if not (isinstance(command, list) and command and all(isinstance(p, str) and p for p in command)):
            return f"{field}.command: expected a non-empty list of strings"
        return None
    language = languages.canonical(value.get("language")) if isinstance(value.get("language"), str) else None
    if language not in JUDGE_LANGUAGES:
        return (
            f"{field}.language: expected one of {', '.join(JUDGE_LANGUAGES)}, got {value.get('language')!r}"
        )
    if not isinstance(value.get("source"), str) or not value["source"].strip():
        return f"{field}.source: expected the program's text"
    return None


def cache_folder() -> Path:
    """The host folder holding built judges (seen read-only by every sandbox)."""
    return languages.cache_root() / "judges"


def include_dirs(extra: Sequence[str] = ()) -> list[str]:
    """The include path of C++ judges: the given folders, then those of DISTILLERY_JUDGE_INCLUDE."""
    from_env = [part for part in os.environ.get(INCLUDE_ENV, "").split(":") if part]
    return [os.path.abspath(path) for path in [*extra, *from_env]]


_lock = threading.Lock()
_prepared: dict[tuple, dict] = {}


def prepare(value: str | Mapping, role: str, python: str, include: Sequence[str] = ()) -> dict:
    """What the supervisor needs to run a judge: {"role", "argv", "files"} with `{root}` in argv
    standing for the runner's folder. Compiles (C++) or copies (command) into the cache the first
    time; raises JudgeError or JudgeToolMissing."""
    if isinstance(value, str):  # an interactor as plain text: a Python program
        value = {"language": "python", "source": value}
    key = (role, python, tuple(include), repr(sorted(value.items())))
    with _lock:
        if key not in _prepared:
            if len(_prepared) >= 256:
                _prepared.clear()
            _prepared[key] = _prepare(value, python, list(include))
        return {"role": role, **_prepared[key]}


def _prepare(value: Mapping, python: str, include: list[str]) -> dict:
    if "command" in value:
        program, *arguments = value["command"]
        if "/" in program and not Path(program).is_file():
            raise JudgeError(f"command: {program} is not a file here")
        argv = [_copied(program) if "/" in program else program]
        argv += [_copied(part) if "/" in part and Path(part).is_file() else part for part in arguments]
        return {"argv": [*argv, *FILE_ARGS], "files": {}}
    language = languages.canonical(value["language"])
    if language == "python":
        return {"argv": [python, "-I", "{root}/judge.py", *FILE_ARGS], "files": {"judge.py": value["source"]}}
    return {"argv": [str(_compiled_cpp(value["source"], include)), *FILE_ARGS], "files": {}}


def _compiled_cpp(source: str, include: list[str]) -> Path:
    if shutil.which("g++") is None:
        raise JudgeToolMissing("g++ is not installed here, so a C++ judge cannot be built")
    flags = [*languages.CPP_FLAGS, *(f"-I{folder}" for folder in include)]
    headers = b"".join(_read(Path(folder) / "testlib.h") for folder in include)
    digest = hashlib.sha256(
        b"\0".join([source.encode(), " ".join(flags).encode(), languages._compiler_key().encode(), headers])
    ).hexdigest()[:24]
    target = cache_folder() / digest / "judge"
    if target.exists():
        return target
    target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    source_path = target.parent / "judge.cpp"
    source_path.write_text(source, encoding="utf-8")
    partial = target.with_name(f".judge.{os.getpid()}.{threading.get_ident()}")
    try:
        built = subprocess.run(["g++", *flags, "-o", str(partial), str(source_path)],
                               capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S)  # fmt: skip
    except subprocess.TimeoutExpired:
        raise JudgeError(f"the C++ judge did not compile within {COMPILE_TIMEOUT_S} s") from None
    if built.returncode != 0:
        partial.unlink(missing_ok=True)
        hint = " (testlib.h: give its folder with judge_include or DISTILLERY_JUDGE_INCLUDE)"
        message = built.stderr.strip()[-1500:]
        raise JudgeError(f"the C++ judge does not compile{hint if 'testlib.h' in message else ''}: {message}")
    partial.chmod(0o755)
    os.replace(partial, target)
    return target


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _copied(part: str) -> str:
    """A file of a command, as its copy in the cache (by content), which the sandbox can see."""
    path = Path(part)
    data = path.read_bytes()
    target = cache_folder() / hashlib.sha256(data).hexdigest()[:24] / path.name
    if not target.exists():
        target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        partial = target.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        partial.write_bytes(data)
        partial.chmod(0o755)
        os.replace(partial, target)
    return str(target)
