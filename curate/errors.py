"""Errors of the curate package that the CLI prints as plain messages (no traceback)."""


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
