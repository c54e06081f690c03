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
    _rejected_all   every rejected row (columns united by name)
    _final          the last committed stage's rows
    _side_<table>   side tables written by stages (verify, clusters, contamination, shards)
    _timings_verify (row_id, seconds) of each verdict, from verify_timings.csv (kept out of Parquet)
    _flagged        (stage, row_id, reason, detail) of rows a stage kept with a caveat: verify's
                    unchecked traces (`no_reference`), decontaminate's flagged rows (mode: flag)

A view whose stage has not run is an empty table with the right columns, never an error.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from curate.schema import REJECT_COLUMNS, SIDE_TABLE_SCHEMAS, STAGE_ALIASES, STAGE_NAMES, TRACE_SCHEMA
from curate.workspace import Workspace

VIEWS_DIR = Path(__file__).resolve().parents[1] / "sql" / "views"
_DUCKDB_TYPES = {pa.string(): "VARCHAR", pa.int64(): "BIGINT", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN"}


def _files(paths: list[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def _empty(schema: pa.Schema) -> str:
    columns = ", ".join(f"NULL::{_DUCKDB_TYPES[f.type]} AS {f.name}" for f in schema)
    return f"SELECT {columns} LIMIT 0"


def _scan(paths: list[Path], empty_schema: pa.Schema) -> str:
    if not paths:
        return _empty(empty_schema)
    return f"SELECT * FROM read_parquet({_files(paths)}, union_by_name = true)"


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


def connect(workspace: str | Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection whose views read the workspace's Parquet files in place."""
    ws = Workspace.open(workspace)
    con = duckdb.connect()
    committed = ws.committed()
    reject_schema = pa.schema(list(TRACE_SCHEMA) + [(c, pa.string()) for c in REJECT_COLUMNS])

    names = STAGE_NAMES + tuple(s.name for s in committed if s.name not in STAGE_NAMES)
    for name in names:
        stage = next((s for s in committed if s.name == name), None)
        con.execute(f"CREATE VIEW stage_{name} AS {_scan(stage.parts() if stage else [], TRACE_SCHEMA)}")
    for old, new in STAGE_ALIASES.items():
        if old not in names:  # a workspace written before the rename has its own stage_<old>
            con.execute(f"CREATE VIEW stage_{old} AS SELECT * FROM stage_{new}")

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

    # Timings live in CSV beside the data (Parquet files stay byte-identical across runs).
    timings = [s.path / "verify_timings.csv" for s in committed if (s.path / "verify_timings.csv").exists()]
    con.execute(
        "CREATE VIEW _timings_verify AS "
        + (
            f"SELECT * FROM read_csv({_files(timings)}, header = true, "
            "columns = {'row_id': 'BIGINT', 'seconds': 'DOUBLE'})"
            if timings
            else "SELECT NULL::BIGINT AS row_id, NULL::DOUBLE AS seconds LIMIT 0"
        )
    )
    con.execute(f"CREATE VIEW _flagged AS {_flagged(committed)}")
    for view in view_names():
        con.execute((VIEWS_DIR / f"{view}.sql").read_text())
    return con
