"""SQL over a workspace: `sql.connect(WS)` returns a DuckDB connection with the views of DESIGN
section 5 (traces, kept, rejected, ledger, funnel, verify, clusters, contamination, shards).

The view definitions are the `.sql` files in `sql/views/`. They read a few base relations that
this module points at the workspace's committed files:

    stage_<name>    rows kept by a committed stage (one per DESIGN stage; empty if not run)
    _stages         (stage_index, stage) of the committed stages
    _stage_keys     (stage, stage_index, id, row_id) of every stage's kept rows
    _rejected_all   every rejected row (columns united by name)
    _final          the last committed stage's rows
    _side_<table>   side tables written by stages (verify, clusters, contamination, shards)

A view whose stage has not run is an empty table with the right columns, never an error.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from curate.schema import REJECT_COLUMNS, SIDE_TABLE_SCHEMAS, STAGE_NAMES, TRACE_SCHEMA
from curate.workspace import Workspace

VIEWS_DIR = Path(__file__).parent / "views"
_DUCKDB_TYPES = {pa.string(): "VARCHAR", pa.int64(): "BIGINT", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN"}

__all__ = ["connect", "view_names"]


def _files(paths: list[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def _empty(schema: pa.Schema) -> str:
    columns = ", ".join(f"NULL::{_DUCKDB_TYPES[f.type]} AS {f.name}" for f in schema)
    return f"SELECT {columns} LIMIT 0"


def _scan(paths: list[Path], empty_schema: pa.Schema) -> str:
    if not paths:
        return _empty(empty_schema)
    return f"SELECT * FROM read_parquet({_files(paths)}, union_by_name = true)"


def view_names() -> list[str]:
    return sorted(p.stem for p in VIEWS_DIR.glob("*.sql"))


def connect(workspace: str | Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection whose views read the workspace's Parquet files in place."""
    ws = Workspace.open(workspace)
    con = duckdb.connect()
    committed = ws.committed()
    reject_schema = pa.schema(list(TRACE_SCHEMA) + [(c, pa.string()) for c in REJECT_COLUMNS])

    for name in STAGE_NAMES + tuple(s.name for s in committed if s.name not in STAGE_NAMES):
        stage = next((s for s in committed if s.name == name), None)
        con.execute(f"CREATE VIEW stage_{name} AS {_scan(stage.parts() if stage else [], TRACE_SCHEMA)}")

    stages = ", ".join(f"({s.index}, '{s.name}')" for s in committed) or "(NULL, NULL)"
    con.execute(
        f"CREATE VIEW _stages AS SELECT * FROM (VALUES {stages}) AS t(stage_index, stage) WHERE stage IS NOT NULL"
    )
    keys = [
        f"SELECT '{s.name}' AS stage, {s.index} AS stage_index, id, row_id FROM read_parquet({_files(s.parts())})"
        for s in committed
        if s.parts()
    ]
    empty_keys = "SELECT NULL::VARCHAR AS stage, NULL::INTEGER AS stage_index, NULL::VARCHAR AS id, NULL::BIGINT AS row_id LIMIT 0"
    con.execute(f"CREATE VIEW _stage_keys AS {' UNION ALL '.join(keys) or empty_keys}")
    con.execute(f"CREATE VIEW _rejected_all AS {_scan(ws.rejected_files(), reject_schema)}")
    last = committed[-1] if committed else None
    con.execute(f"CREATE VIEW _final AS {_scan(last.parts() if last else [], TRACE_SCHEMA)}")
    for table, schema in SIDE_TABLE_SCHEMAS.items():
        files = [s.path / f"{table}.parquet" for s in committed if (s.path / f"{table}.parquet").exists()]
        con.execute(f"CREATE VIEW _side_{table} AS {_scan(files, schema)}")

    for view in view_names():
        con.execute((VIEWS_DIR / f"{view}.sql").read_text())
    return con
