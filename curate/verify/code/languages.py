"""The languages code is verified in: how each is compiled and run inside the sandbox (host side).

A language is chosen by the spec's `language`, else by the fenced block the response's code came
from (```cpp, ```java, ```js ...), else Python. For a compiled language the worker first runs the
compiler in a runner of its own (its own limits; a compile error is `fail` with the compiler's
message), then runs the program it built once per test case; the build is kept in memory by the
supervisor, so it is compiled once per sample.

Commands are fixed here, never taken from a spec. Paths are inside a run's private /tmp: sources
are written to /tmp/src, a compiler writes to /tmp/build, and a run finds the build in /tmp.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from curate.verify.code.extract import LANGUAGES as ALIASES

COMPILE_TIME_LIMIT_S = 30.0
COMPILE_MEMORY_MB = 2048
COMPILE_PROCESSES = 16  # g++ runs cc1plus, as, collect2 and ld one after another; javac is a JVM


@dataclass(frozen=True)
class Language:
    name: str
    source: str  # file name of the solution in /tmp/src
    compile: tuple[str, ...] | None  # None: the source itself runs
    run: tuple[str, ...]
    memory_overhead_mb: int = 0  # added to the address-space limit: a runtime's own reservations
    processes: int | None = None  # threads and processes a run may have, when the default is too few


CPP_FLAGS = ("-O2", "-std=c++17")
CPP = Language(
    "cpp",
    "solution.cpp",
    ("g++", *CPP_FLAGS, "-pipe", "-o", "/tmp/build/solution", "/tmp/src/solution.cpp"),
    ("/tmp/solution",),
)
# The JVM reserves a fixed amount of address space besides its heap (class space, code cache,
# thread stacks): the heap gets the problem's memory limit, the address space that plus this.
_JVM = (
    "-XX:+UseSerialGC",
    "-XX:-UsePerfData",
    "-XX:CompressedClassSpaceSize=64m",
    "-XX:ReservedCodeCacheSize=64m",
)
JAVA = Language(
    "java",
    "Main.java",
    ("javac", "-J-Xmx512m", *(f"-J{flag}" for flag in _JVM), "-encoding", "UTF-8", "-d", "/tmp/build"),
    ("java", "-Xmx{memory_mb}m", "-Xss64m", *_JVM, "-cp", "/tmp", "Main"),
    memory_overhead_mb=2048,
    processes=64,
)
JAVASCRIPT = Language(
    "javascript",
    "solution.js",
    None,
    ("node", "--max-old-space-size={memory_mb}", "--stack-size=65500", "/tmp/solution.js"),
    memory_overhead_mb=1024,
    processes=32,
)
BY_NAME = {language.name: language for language in (CPP, JAVA, JAVASCRIPT)}
SUPPORTED = ("python", *BY_NAME)


@functools.cache
def missing_tool(language: str) -> str | None:
    """The compiler or runtime of `language` that is not installed here, if any."""
    spec = BY_NAME.get(language)
    if spec is None:
        return None
    for command in (spec.compile, spec.run):
        if command and not command[0].startswith("/") and shutil.which(command[0]) is None:
            return command[0]
    return None


def canonical(name: str | None) -> str | None:
    """`c++`, `cpp`, `cc` -> cpp; `js`, `node` -> javascript; None for an unknown name."""
    if not name:
        return None
    lowered = name.strip().lower()
    for language, aliases in ALIASES.items():
        if lowered == language or lowered in aliases:
            return language
    return None


_PUBLIC_CLASS = re.compile(r"\bpublic\s+(?:final\s+|abstract\s+)*class\s+([A-Za-z_]\w*)")
_CLASS = re.compile(r"\b(?:class|interface|enum|record)\s+([A-Za-z_]\w*)")
_MAIN = re.compile(r"\bstatic\s+(?:final\s+)?void\s+main\s*\(")
_STRINGS_AND_COMMENTS = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|//[^\n]*|/\*.*?\*/', re.S)


def java_main_class(source: str) -> str:
    """The class a Java solution is run as: the top-level class that declares `main` (else the
    public class, else Main). Its file must be named after the public class, if any."""
    text = _STRINGS_AND_COMMENTS.sub(lambda m: " " * len(m.group(0)), source)
    depth, top_level, current = 0, [], None
    for index, char in enumerate(text):
        if char == "{":
            if depth == 0:
                found = [m for m in _CLASS.finditer(text, 0, index)]
                current = found[-1].group(1) if found else None
                top_level.append((current, index))
            depth += 1
        elif char == "}":
            depth = max(0, depth - 1)
    main = _MAIN.search(text)
    if main:
        owners = [name for name, start in top_level if start < main.start()]
        if owners and owners[-1]:
            return owners[-1]
    public = _PUBLIC_CLASS.search(text)
    return public.group(1) if public else "Main"


def java_file_name(source: str) -> str:
    public = _PUBLIC_CLASS.search(_STRINGS_AND_COMMENTS.sub(" ", source))
    return f"{public.group(1) if public else java_main_class(source)}.java"


# --- a precompiled bits/stdc++.h ---------------------------------------------------------------------------
# Parsing bits/stdc++.h is most of a C++ solution's compile time (seconds). The host precompiles it
# once per machine and compiler into a cache folder that every sandbox sees read-only; g++ finds
# `bits/stdc++.h.gch` there first (-I) and uses it when the flags match, else the header as usual.


def cache_root() -> Path:
    """This machine's distillery cache (built judges, the precompiled header, the sandbox code)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "distillery"


def pch_root() -> Path | None:
    """The folder holding the precompiled headers of every g++ and CPP_FLAGS seen here (None
    without g++): what a sandbox binds, found without running g++ at every worker's start."""
    return None if missing_tool("cpp") else cache_root() / "pch"


def pch_folder() -> Path | None:
    """The cache folder of the precompiled header for this g++ and CPP_FLAGS (None without g++)."""
    root = pch_root()
    return None if root is None else root / _compiler_key()


@functools.cache
def _compiler_key() -> str:
    version = subprocess.run(["g++", "--version"], capture_output=True, text=True, timeout=30).stdout
    return hashlib.sha256((version + " ".join(CPP_FLAGS)).encode()).hexdigest()[:16]


_pch_lock = threading.Lock()


def ensure_pch() -> Path | None:
    """The folder holding a built bits/stdc++.h.gch, building it the first time (a few seconds);
    None when it cannot be built here (no g++, no cache folder): compiles then parse the header."""
    folder = pch_folder()
    if folder is None:
        return None
    target = folder / "bits" / "stdc++.h.gch"
    with _pch_lock:
        if target.exists():
            return folder
        try:
            header = _stdcpp_header()
            target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            partial = target.with_name(f".{os.getpid()}.{threading.get_ident()}.gch")
            subprocess.run(["g++", *CPP_FLAGS, "-x", "c++-header", header, "-o", str(partial)],
                           check=True, capture_output=True, timeout=300)  # fmt: skip
            partial.chmod(0o644)
            os.replace(partial, target)
        except (OSError, subprocess.SubprocessError, ValueError):
            return None
    return folder


def _stdcpp_header() -> str:
    out = subprocess.run(["g++", *CPP_FLAGS, "-x", "c++", "-E", "-"], input="#include <bits/stdc++.h>\n",
                         capture_output=True, text=True, timeout=60, check=True).stdout  # fmt: skip
    found = re.search(r'^# 1 "([^"]+/bits/stdc\+\+\.h)"', out, re.M)
    if not found:
        raise ValueError("bits/stdc++.h not found")
    return found.group(1)


def program(language: Language, code: str, memory_mb: int) -> dict:
    """What the supervisor needs to build and run `code`: source name, commands, limits."""
    source, run = language.source, list(language.run)
    compile_command = list(language.compile) if language.compile else None
    if language is CPP and "bits/stdc++.h" in code:
        folder = ensure_pch()
        if folder is not None:
            compile_command.insert(1, f"-I{folder}")  # type: ignore[union-attr]
    if language is JAVA:
        source = java_file_name(code)
        run[-1] = java_main_class(code)
        compile_command = [*compile_command, f"/tmp/src/{source}"]  # type: ignore[list-item]
    return {
        "language": language.name,
        "source": source,
        "compile": compile_command,
        "run": [part.format(memory_mb=memory_mb) for part in run],
        "memory_overhead_mb": language.memory_overhead_mb,
        "processes": language.processes,
    }
