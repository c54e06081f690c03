"""`distillery sql WS ["QUERY"]`: run one query, or an interactive shell when none is given."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import Any

FORMATS = ("table", "csv", "json", "parquet")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "sql",
        help="query a workspace with SQL (views: traces, kept, rejected, ledger, funnel, ...)",
        description="Query a workspace with DuckDB SQL. Without a query, opens an interactive shell.",
    )
    parser.add_argument("workspace", metavar="WS")
    parser.add_argument("query", nargs="?", help="SQL query; omit for an interactive shell")
    parser.add_argument("--format", choices=FORMATS, default="table")
    parser.add_argument("--out", help="write the result to this file instead of stdout")
    parser.add_argument("--max-rows", type=int, default=50, help="rows shown by --format table (default 50)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import duckdb

    import sql
    from curate.catalog import write_views

    con = sql.connect(args.workspace)
    try:
        write_views(args.workspace)  # keep WS/views.sql current for plain DuckDB
    except OSError:
        pass  # a read-only workspace: the views here are still right
    if args.query is None:
        return shell(con, args.max_rows)
    try:
        emit(con, args.query, args.format, args.out, args.max_rows)
    except duckdb.Error as error:
        print(f"distillery sql: {error}", file=sys.stderr)
        return 1
    return 0


def _quoted(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"key", "value"} and isinstance(value["key"], list):
        return dict(zip(value["key"], value["value"], strict=True))  # a DuckDB MAP
    return value


def _csv_cell(value: Any) -> Any:
    value = _jsonable(value)
    return json.dumps(value, ensure_ascii=False, default=str) if isinstance(value, dict | list) else value


def emit(con, query: str, fmt: str, out: str | None, max_rows: int = 50) -> None:
    """Print (or write to `out`) the result of `query` in `fmt`."""
    query = query.strip().rstrip(";")
    if out and fmt in ("csv", "parquet"):
        options = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER true"
        con.execute(f"COPY ({query}) TO {_quoted(out)} ({options})")
        return
    if fmt == "parquet":
        raise SystemExit("distillery sql: --format parquet needs --out FILE")
    cursor = con.execute(query)
    columns = [d[0] for d in cursor.description]
    rows = cursor.fetchall()
    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_csv_cell(v) for v in row] for row in rows)
        return
    if fmt == "json":
        text = json.dumps(
            [{c: _jsonable(v) for c, v in zip(columns, row, strict=True)} for row in rows],
            ensure_ascii=False,
            default=str,
        )
    else:
        text = render_table(columns, rows, max_rows)
    if out:
        with open(out, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    else:
        print(text)


def render_table(columns: list[str], rows: list[tuple], max_rows: int = 50, width: int = 60) -> str:
    """A plain text table; long cells are cut to `width` characters with an ellipsis."""

    def cell(value: Any) -> str:
        text = "NULL" if value is None else str(_jsonable(value)).replace("\n", "\\n")
        return text if len(text) <= width else text[: width - 1] + "…"

    shown = [[cell(v) for v in row] for row in rows[:max_rows]]
    widths = [max([len(c)] + [len(r[i]) for r in shown]) for i, c in enumerate(columns)]
    lines = [
        " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)),
        "-+-".join("-" * w for w in widths),
        *(" | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in shown),
    ]
    if len(rows) > max_rows:
        lines.append(f"… {len(rows) - max_rows} more rows ({len(rows)} in all; --max-rows to show more)")
    else:
        lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines)


def shell(con, max_rows: int) -> int:
    """A small REPL: statements end with `;`; `.tables`, `.schema VIEW`, `.quit`."""
    import duckdb

    try:
        import readline  # noqa: F401  (line editing and history for input())
    except ImportError:
        pass
    print("distillery sql shell: end statements with ';'  (.tables, .schema VIEW, .quit)")
    buffer = ""
    while True:
        try:
            line = input("sql> " if not buffer else "...> ")
        except EOFError:
            print()
            return 0
        stripped = line.strip()
        if not buffer and stripped in (".quit", ".exit"):
            return 0
        if not buffer and stripped == ".tables":
            stripped = "SELECT table_name AS view FROM information_schema.tables WHERE table_name NOT LIKE '\\_%' ESCAPE '\\' ORDER BY 1;"
        elif not buffer and stripped.startswith(".schema"):
            stripped = f"DESCRIBE {stripped.split(maxsplit=1)[1] if ' ' in stripped else 'traces'};"
        buffer += stripped + "\n"
        if buffer.rstrip().endswith(";"):
            try:
                emit(con, buffer, "table", None, max_rows)
            except duckdb.Error as error:
                print(f"error: {error}")
            buffer = ""
