"""Errors of the curate package that the CLI prints as plain messages (no traceback)."""

import difflib
from collections.abc import Iterable


class CurateError(Exception):
    """A problem the user can fix: a bad path, config or input file."""

    user_error = True


class InputError(CurateError):
    """Bad input, located: file, line (1-based, or record index) and field."""

    def __init__(self, path: str, message: str, line: int | None = None, field: str | None = None):
        where = path if line is None else f"{path}:{line}"
        if field:
            where += f" (field {field!r})"
        super().__init__(f"{where}: {message}")
        self.path, self.line, self.field = path, line, field


class EmptyResult(CurateError):
    """A stage kept no row: the run stops there (committed stages stay, for inspection) instead
    of writing empty shards. `results` are the manifest entries of the stages that ran."""

    def __init__(self, message: str, results: list[dict]):
        super().__init__(message)
        self.results = results


class WorkspaceBusy(CurateError):
    """Another run holds the workspace's lock."""


# What to do about an OS error, by errno name: the advice ends the one line a command prints.
_OS_ADVICE = {
    "ENOSPC": "no space left on the device: free space (or use a folder on a larger disk) and rerun; "
    "committed stages are kept and the rerun resumes",
    "EDQUOT": "disk quota exceeded: free space and rerun; the rerun resumes",
    "EACCES": "permission denied: fix the folder's permissions (or choose another) and rerun",
    "EPERM": "operation not permitted: fix the permissions (or choose another folder) and rerun",
    "EROFS": "the filesystem is read-only: choose a writable folder and rerun",
    "ENOENT": "the file vanished while the command ran: restore it (or drop it from the inputs) and rerun",
    "EIO": "input/output error from the device: check the disk and rerun",
    "EMFILE": "too many open files: raise `ulimit -n` and rerun",
}


def os_error_message(error: OSError, where: str | None = None) -> str:
    """One line for an OS error: the path (the error's own, else `where`), what happened, what to do."""
    import errno as errno_names

    path = error.filename or where or "?"
    if error.filename2:
        path = f"{error.filename} -> {error.filename2}"
    name = errno_names.errorcode.get(error.errno or 0, "")
    advice = _OS_ADVICE.get(name)
    if advice is None:
        return f"{path}: {error.strerror or error}"
    return f"{path}: {advice} ({name})"


def user_error_from(error: BaseException, where: str | None = None) -> CurateError | None:
    """The CurateError to report for an OS-level failure (OSError, also as DuckDB or Polars
    wrap it), or None for anything else: a bug, which keeps its traceback."""
    if isinstance(error, CurateError):
        return error
    if isinstance(error, OSError) and error.errno is not None:
        return CurateError(os_error_message(error, where))
    if type(error).__module__.split(".")[0] not in ("duckdb", "polars", "pyarrow"):
        return None
    text = str(error)
    for code, name in ((28, "ENOSPC"), (13, "EACCES"), (30, "EROFS"), (2, "ENOENT")):
        if f"errno {code}]" in text.lower() or f"errno {code}:" in text.lower() or name in text:
            return CurateError(os_error_message(OSError(code, text), where))
    if "No space left on device" in text:
        return CurateError(os_error_message(OSError(28, text), where))
    return None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest of a closed set of names, or '' when none is close:
    the one hint every mistyped name gets (stages, formats, domains, options, commands)."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
