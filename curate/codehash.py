"""The code part of a stage's fingerprint: a hash of the source of the stage's module and of every
project module it uses, found by reading their imports, so a change to the code that computes a
stage reruns it (and the stages after it) without anyone bumping a version.

The rule is deliberately generous, because a stale reuse is worse than a needless rerun:
- every `import` anywhere in a module counts (also those inside functions, imported lazily);
- a module of the project named in an import is followed to its own imports;
- an import of a sub-package, or of a name the package defines (`from curate.verify.code import
  CodeVerifier`), takes every `.py` file under that package's folder: packages load modules by
  name or ship their files to sandboxes, which no import statement shows; `from pkg import mod`
  of one of its modules takes that module and the package's `__init__.py`;
- the versions of the libraries that write or compute the data (pyarrow, polars, duckdb) count too.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import sys
from pathlib import Path

# Followed through imports: curate's stages import only curate, distillery run's steps all three.
PROJECT_PACKAGES = ("curate", "distill", "merge")
ROOT = Path(__file__).resolve().parents[1]  # the folder holding the project's packages
LIBRARIES = ("pyarrow", "polars", "duckdb")


def _module_file(name: str) -> Path | None:
    """The source file of project module `name` (its __init__.py for a package), or None; found
    on disk without importing anything."""
    top, *rest = name.split(".")
    if top not in PROJECT_PACKAGES:
        return None
    base = ROOT / top / Path(*rest) if rest else ROOT / top
    for candidate in (base.with_suffix(".py") if rest else None, base / "__init__.py"):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def _loaded_file(name: str) -> Path | None:
    """The source of an imported module outside the project (a stage a user or a test defines)."""
    file = getattr(sys.modules.get(name), "__file__", None)
    return Path(file) if file and file.endswith(".py") else None


def _imported_names(path: Path, module: str) -> set[tuple[str, bool]]:
    """(module name, whole package?) for every import anywhere in `path` (relative imports
    resolved against `module`). `from pkg import sub` where `sub` is a module of the package takes
    that module (and the package's __init__, which runs first); `from pkg import name` where
    `name` is anything else (a class, a function) takes the whole package."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[tuple[str, bool]] = set()
    for level, base, aliases in _import_statements(path.read_bytes()):
        if level is None:
            names.update((alias, True) for alias in aliases)
            continue
        if level:
            parts = package.split(".")
            parent = ".".join(parts[: len(parts) - level + 1])
            base = f"{parent}.{base}" if base else parent
        for alias in aliases:
            sub = f"{base}.{alias}"
            if alias != "*" and _module_file(sub) is not None:
                names.update({(sub, True), (base, False)})
            else:
                names.add((base, True))
    return names


@functools.cache
def _import_statements(source: bytes) -> tuple[tuple[int | None, str, tuple[str, ...]], ...]:
    """Every import in `source` as (level, module, names); level None for a plain `import`.
    Cached by content: the stages of one run share most of their modules, and parsing is the
    cost of hashing (a run's fingerprints parsed each shared module once per stage)."""
    found: list[tuple[int | None, str, tuple[str, ...]]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.append((None, "", tuple(alias.name for alias in node.names)))
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or "", tuple(alias.name for alias in node.names)))
    return tuple(found)


@functools.cache
def module_closure(module: str, stop: tuple[str, ...] = ()) -> tuple[Path, ...]:
    """The project source files that module `module` depends on, itself included, sorted; the
    modules named in `stop` are not followed (nor what only they import)."""
    seen: set[Path] = set()
    expanded: set[Path] = set()
    todo = [(module, True)]
    while todo:
        name, whole = todo.pop()
        if name in stop:
            continue
        path = _module_file(name) or (_loaded_file(name) if name == module else None)
        if path is None:
            continue
        files = [path]
        if whole and path.name == "__init__.py" and name.count(".") >= 1 and path not in expanded:
            expanded.add(path)
            files = sorted(path.parent.rglob("*.py"))
        for file in files:
            if file in seen:
                continue
            seen.add(file)
            todo.extend(_imported_names(file, _module_name(file, name, path)))
    return tuple(sorted(seen))


def _module_name(file: Path, name: str, path: Path) -> str:
    """The dotted name of `file`, a file under the folder of `path` (the file of module `name`)."""
    if file == path:
        return name
    relative = file.relative_to(path.parent).with_suffix("")
    parts = [p for p in relative.parts if p != "__init__"]
    return ".".join([name, *parts])


@functools.cache
def code_hash(module: str, stop: tuple[str, ...] = ()) -> str:
    """sha256 of the sources module `module` depends on (paths relative to the project, so two
    checkouts of the same code agree) and of the data libraries' versions."""
    digest = hashlib.sha256()
    for path in module_closure(module, stop):
        where = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name
        digest.update(where.encode() + b"\0" + path.read_bytes() + b"\0")
    for library in LIBRARIES:
        found = sys.modules.get(library)
        version = getattr(found, "__version__", None) if found else _version(library)
        digest.update(f"{library}={version}\0".encode())
    return digest.hexdigest()[:32]


def _version(library: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(library)
    except PackageNotFoundError:
        return None
