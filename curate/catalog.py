"""SQL over a workspace: `connect(WS)` (also `sql.connect`) returns a DuckDB connection with the
views of design §5 (traces, kept, rejected, ledger, funnel, verify, clusters,
contamination, shards).

It lives in curate, beside the workspace it reads, so that curate's report can use it without
importing the `sql` package (which imports curate: no cycle). The view definitions are the `.sql`
files in `sql/views/`; they read a few base relations that this module points at the workspace's
committed files:

    stage_<name>    rows kept by a committed stage (one per DESIGN stage; empty if not run)
    _stages         (stage_index, stage) of the committed stages
    _stage_keys     (stage, stage_index, id, row_id) of every stage's kept rows
    _rejected_all   every rejected row, its stage's own columns unpacked from `extra`
    _final          the last committed stage's rows
    _side_<table>   side tables written by stages (verify, clusters, contamination, shards)
    _timings_verify (row_id, seconds) of each verdict, from verify_timings.csv (kept out of Parquet)
    _flagged        (stage, row_id, reason, detail) of rows a stage kept with a caveat: verify's
                    unchecked traces (`no_reference`), decontaminate's flagged rows (mode: flag)

A view whose stage has not run is an empty table with the right columns, never an error.

The whole catalog is one SQL script (`views_sql`), also written to WS/views.sql, so that plain
DuckDB (`duckdb -init WS/views.sql`) gets the same views. Its file paths are relative to the
workspace and joined to the variable `distillery_ws`, which the script sets to the workspace's
absolute path unless it is already set: the script works from any directory, and a moved
workspace works once that variable names its new place.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from curate.schema import REJECT_COLUMNS, SIDE_TABLE_SCHEMAS, STAGE_ALIASES, STAGE_NAMES, TRACE_SCHEMA
from curate.workspace import Workspace, local_path

VIEWS_DIR = Path(__file__).resolve().parents[1] / "sql" / "views"
VIEWS_FILE = "views.sql"
ROOT_VARIABLE = "distillery_ws"
_DUCKDB_TYPES = {pa.string(): "VARCHAR", pa.int64(): "BIGINT", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN"}
_EXTRA_TYPES = {"string": "VARCHAR", "large_string": "VARCHAR", "int64": "BIGINT", "int32": "INTEGER"}
_EXTRA_TYPES |= {"double": "DOUBLE", "float": "FLOAT", "bool": "BOOLEAN"}

# Every rejected file has this one schema whatever its stage, so that a plain Parquet glob reads
# them all; the columns a stage added (verify_status, n_tokens, ...) are one JSON object in
# `extra`, their Arrow types in the file's metadata under EXTRA_TYPES_KEY.
REJECT_SCHEMA = pa.schema(
    [*TRACE_SCHEMA, *((c, pa.string()) for c in REJECT_COLUMNS), ("extra", pa.string())]
)
EXTRA_TYPES_KEY = b"distillery.extra_types"


def rejected_table(dropped: pa.Table) -> pa.Table:
    """A stage's dropped rows in REJECT_SCHEMA: trace columns, stage, reason, detail, and every
    other column packed into the JSON column `extra`."""
    n = dropped.num_rows
    names = set(dropped.column_names)
    extras = [c for c in dropped.column_names if c not in REJECT_SCHEMA.names]
    columns = [
        dropped[f.name].cast(f.type) if f.name in names else pa.nulls(n, f.type)
        for f in REJECT_SCHEMA
        if f.name != "extra"
    ]
    if extras:
        frame = pl.from_arrow(dropped.select(extras))
        encoded = frame.select(pl.struct(extras).struct.json_encode()).to_series().to_arrow()
        columns.append(encoded.cast(pa.string()))
    else:
        columns.append(pa.nulls(n, pa.string()))
    types = {c: str(dropped.schema.field(c).type) for c in extras}
    schema = REJECT_SCHEMA.with_metadata({EXTRA_TYPES_KEY: json.dumps(types).encode()})
    return pa.Table.from_arrays(columns, schema=schema)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class _Paths:
    """File paths as SQL: the workspace variable joined to the path relative to the workspace."""

    def __init__(self, root: Path):
        self.root = root

    def one(self, path: Path) -> str:
        return f"(getvariable('{ROOT_VARIABLE}') || {_literal('/' + path.resolve().relative_to(self.root).as_posix())})"

    def many(self, paths: list[Path]) -> str:
        return "[" + ", ".join(self.one(p) for p in paths) + "]"


def _empty(schema: pa.Schema) -> str:
    columns = ", ".join(f"NULL::{_DUCKDB_TYPES[f.type]} AS {f.name}" for f in schema)
    return f"SELECT {columns} LIMIT 0"


def _scan(paths: _Paths, files: list[Path], empty_schema: pa.Schema) -> str:
    if not files:
        return _empty(empty_schema)
    return f"SELECT * FROM read_parquet({paths.many(files)}, union_by_name = true)"


def _rejected(paths: _Paths, files: list[Path]) -> str:
    """Every rejected file, its `extra` unpacked into typed columns (united by name); a file from
    before the one-schema layout has those columns itself."""
    selects = []
    for file in files:
        schema = pq.read_schema(file)
        if "extra" not in schema.names:
            selects.append(f"SELECT * FROM read_parquet({paths.one(file)})")
            continue
        types = json.loads((schema.metadata or {}).get(EXTRA_TYPES_KEY, b"{}"))
        unpacked = "".join(
            f', (extra->>{_literal(name)})::{_EXTRA_TYPES[kind]} AS "{name}"'
            if kind in _EXTRA_TYPES
            else f', (extra->{_literal(name)})::VARCHAR AS "{name}"'
            for name, kind in types.items()
        )
        selects.append(f"SELECT * EXCLUDE (extra){unpacked} FROM read_parquet({paths.one(file)})")
    if not selects:
        return _empty(pa.schema(list(TRACE_SCHEMA) + [(c, pa.string()) for c in REJECT_COLUMNS]))
    return "\nUNION ALL BY NAME\n".join(selects)


def _flagged(committed: list) -> str:
    """The `_flagged` relation: kept rows whose verdict is not a pass, and rows decontaminate
    flagged without dropping them (one line per row: its first hit)."""
    names = {s.name for s in committed}
    parts = []
    if "verify" in names:
        parts.append(
            """SELECT 'verify' AS stage, v.row_id, v.status AS reason, v.detail FROM _side_verify v
               WHERE v.status <> 'pass'
                 AND v.row_id IN (SELECT row_id FROM _stage_keys WHERE stage = 'verify')"""
        )
    if "decontaminate" in names:
        parts.append(
            """SELECT 'decontaminate' AS stage, row_id, 'contaminated' AS reason,
                      min(benchmark || ':' || benchmark_item) AS detail
               FROM _side_contamination WHERE NOT dropped GROUP BY row_id"""
        )
    empty = "SELECT NULL::VARCHAR AS stage, NULL::BIGINT AS row_id, NULL::VARCHAR AS reason, NULL::VARCHAR AS detail LIMIT 0"
    return " UNION ALL ".join(parts) or empty


def view_names() -> list[str]:
    return sorted(p.stem for p in VIEWS_DIR.glob("*.sql"))


def views_sql(workspace: str | Path) -> str:
    """The SQL script that defines every view of the workspace (what WS/views.sql holds)."""
    ws = Workspace.open(workspace)
    root = Path(ws.root).resolve()
    paths = _Paths(root)
    committed = ws.committed()
    statements = [
        f"-- distillery views over the workspace {root}; run with `duckdb -init {root / VIEWS_FILE}`.\n"
        f"-- Paths are relative to the workspace: to read a moved workspace, first\n"
        f"-- SET VARIABLE {ROOT_VARIABLE} = '/its/new/path';\n"
        f"SET VARIABLE {ROOT_VARIABLE} = coalesce(getvariable('{ROOT_VARIABLE}'), {_literal(str(root))})"
    ]

    def view(name: str, body: str) -> None:
        statements.append(f"CREATE OR REPLACE VIEW {name} AS\n{body}")

    names = STAGE_NAMES + tuple(s.name for s in committed if s.name not in STAGE_NAMES)
    for name in names:
        stage = next((s for s in committed if s.name == name), None)
        view(f"stage_{name}", _scan(paths, stage.parts() if stage else [], TRACE_SCHEMA))
    for old, new in STAGE_ALIASES.items():
        if old not in names:  # a workspace written before the rename has its own stage_<old>
            view(f"stage_{old}", f"SELECT * FROM stage_{new}")

    stages = ", ".join(f"({s.index}, '{s.name}')" for s in committed) or "(NULL, NULL)"
    view("_stages", f"SELECT * FROM (VALUES {stages}) AS t(stage_index, stage) WHERE stage IS NOT NULL")
    keys = [
        f"SELECT '{s.name}' AS stage, {s.index} AS stage_index, id, row_id FROM read_parquet({paths.many(s.parts())})"
        for s in committed
        if s.parts()
    ]
    empty_keys = "SELECT NULL::VARCHAR AS stage, NULL::INTEGER AS stage_index, NULL::VARCHAR AS id, NULL::BIGINT AS row_id LIMIT 0"
    view("_stage_keys", "\nUNION ALL\n".join(keys) or empty_keys)
    view("_rejected_all", _rejected(paths, ws.rejected_files()))
    last = committed[-1] if committed else None
    view("_final", _scan(paths, last.parts() if last else [], TRACE_SCHEMA))
    for table, schema in SIDE_TABLE_SCHEMAS.items():
        files = [s.path / f"{table}.parquet" for s in committed if (s.path / f"{table}.parquet").exists()]
        view(f"_side_{table}", _scan(paths, files, schema))

    # Timings live in CSV beside the data (Parquet files stay byte-identical across runs).
    timings = [s.path / "verify_timings.csv" for s in committed if (s.path / "verify_timings.csv").exists()]
    view(
        "_timings_verify",
        f"SELECT * FROM read_csv({paths.many(timings)}, header = true, "
        "columns = {'row_id': 'BIGINT', 'seconds': 'DOUBLE'})"
        if timings
        else "SELECT NULL::BIGINT AS row_id, NULL::DOUBLE AS seconds LIMIT 0",
    )
    view("_flagged", _flagged(committed))
    body = ";\n\n".join(statements) + ";\n"
    for name in view_names():
        body += "\n" + (VIEWS_DIR / f"{name}.sql").read_text().strip() + "\n"
    return body


def write_views(workspace: str | Path) -> Path:
    """Write (atomically) WS/views.sql, the script `connect` runs; returns its path."""
    root = local_path(workspace)
    text = views_sql(root)
    out = root / VIEWS_FILE
    if not out.exists() or out.read_text(encoding="utf-8") != text:
        tmp = root / f".{VIEWS_FILE}.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out)
    return out


def connect(workspace: str | Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection whose views read the workspace's Parquet files in place."""
    script = views_sql(workspace)  # opens (and so checks) the workspace first
    con = duckdb.connect()
    con.execute(f"SET VARIABLE {ROOT_VARIABLE} = {_literal(str(local_path(workspace).resolve()))}")
    con.execute(script)
    return con
