"""SQL over a workspace: `sql.connect(WS)` returns a DuckDB connection with the views of design
section 5. The views are the `.sql` files in `sql/views/`; the connection is built by
curate.catalog (beside the workspace it reads), from the same script it writes to WS/views.sql
for plain DuckDB; `distillery sql` is sql.shell."""

from curate.catalog import VIEWS_DIR, connect, view_names, views_sql, write_views

__all__ = ["VIEWS_DIR", "connect", "view_names", "views_sql", "write_views"]
