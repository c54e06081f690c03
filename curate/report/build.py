"""Gather the report's numbers with SQL over the workspace and render one self-contained HTML page.

Every number comes from the same DuckDB views users query (`funnel`, `kept`, `shards`, `verify`,
`clusters`, `contamination`), so the page and `distillery sql` always agree. Cells that tests and
scripts read carry `data-*` attributes (`data-stage`, `data-field`, `data-domain`).
"""

from __future__ import annotations

import math
import os
import time
from html import escape
from pathlib import Path
from typing import Any

import duckdb

from curate.catalog import connect, write_views
from curate.report.examples import CSS as EXAMPLES_CSS
from curate.report.examples import examples_html
from curate.report.svg import DROPPED, KEPT, PALETTE, bars, histogram, number, stacked_bars
from curate.workspace import Workspace

STATUS_COLORS = {
    "pass": "#59a14f",
    "fail": "#e15759",
    "no_answer": "#f28e2b",
    "no_reference": "#bab0ac",
    "invalid_reference": "#b07aa1",
    "timeout": "#edc948",
    "error": "#9c755f",
    "prompt": "#d4d4d4",
}
UNCHECKED = ("no_reference", "prompt")  # verdicts that say nothing about the trace's correctness
DOMAIN_COLORS = {"math": PALETTE[0], "code": PALETTE[1], "science": PALETTE[2], "other": PALETTE[9]}
SNIPPET = 140


def _domain_color(domain: str) -> str:
    return DOMAIN_COLORS.get(domain, PALETTE[4 + sum(map(ord, domain)) % 5])


def write_report(workspace: str | Path) -> Path:
    """Render WS/report/index.html (atomically) and return its path."""
    root = Path(workspace)
    write_views(root)  # WS/views.sql: the same views for plain DuckDB, current after every run
    html = build_report(root)
    out = root / "report"
    out.mkdir(exist_ok=True)
    tmp = out / ".index.html.tmp"
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, out / "index.html")
    return out / "index.html"


def build_report(workspace: str | Path) -> str:
    ws = Workspace.open(workspace)
    con = connect(ws.root)
    manifest = ws.manifest()
    sections = [
        _summary(con, manifest),
        _funnel(con),
        _domains(con),
        _lengths(con, _token_counter(manifest)),
        _verification(con),
        _clusters(con),
        _dropped_examples(con, manifest),
        _contamination(con, manifest),
    ]
    return _page(ws.root.name, "\n".join(sections))


def _rows(con: duckdb.DuckDBPyConnection, query: str) -> list[dict[str, Any]]:
    cursor = con.execute(query)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _columns(con: duckdb.DuckDBPyConnection, view: str) -> set[str]:
    return {row[0] for row in con.execute(f"DESCRIBE {view}").fetchall()}


def _snippet(text: str | None) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= SNIPPET else text[: SNIPPET - 1] + "…"


def _table(headers: list[str], rows: list[list[str]], table_id: str = "", raw: bool = False) -> str:
    """An HTML table; cells are escaped unless `raw` (then they are already HTML)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{c if raw else escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    ident = f' id="{table_id}"' if table_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _section(title: str, anchor: str, body: str, note: str = "") -> str:
    lead = f'<p class="note">{escape(note)}</p>' if note else ""
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>{lead}{body}</section>'


def _empty(message: str) -> str:
    return f'<p class="empty">{escape(message)}</p>'


# Sections --------------------------------------------------------------------------------------


def _summary(con: duckdb.DuckDBPyConnection, manifest: dict[str, Any]) -> str:
    traces = con.execute("SELECT count(*) FROM traces").fetchone()[0]
    kept = con.execute("SELECT count(*) FROM kept").fetchone()[0]
    sharded = con.execute("SELECT count(*) FROM shards").fetchone()[0]
    sources = _rows(
        con,
        """
        SELECT t.source, count(*) AS ingested, count(k.row_id) AS kept
        FROM traces t LEFT JOIN (SELECT row_id FROM kept) k USING (row_id)
        GROUP BY t.source ORDER BY ingested DESC, t.source
        """,
    )
    cards = "".join(
        f'<div class="card"><div class="big" data-field="{key}">{number(value)}</div><div>{escape(title)}</div></div>'
        for key, title, value in (
            ("ingested", "rows ingested", traces),
            ("kept", "rows kept", kept),
            ("sharded", "rows in shards", sharded),
            ("kept_share", "% kept", round(100 * kept / traces, 2) if traces else 0),
        )
    )
    inputs = ", ".join(escape(str(i)) for i in manifest.get("inputs", [])) or "-"
    source_rows = [
        [
            escape(s["source"] or "-"),
            number(s["ingested"]),
            number(s["kept"]),
            f"{100 * s['kept'] / s['ingested']:.1f}%",
        ]
        for s in sources
    ]
    body = f'<div class="cards">{cards}</div><p class="note">inputs: {inputs}</p>' + _table(
        ["source", "ingested", "kept", "kept %"], source_rows, "sources", raw=True
    )
    return _section("Summary", "summary", body)


def _funnel(con: duckdb.DuckDBPyConnection) -> str:
    stages = _rows(con, "SELECT stage, rows_in, rows_out, dropped, by_reason, flagged FROM funnel")
    if not stages:
        return _section("Funnel", "funnel", _empty("no stage has been committed yet"))
    chart = stacked_bars(
        [(s["stage"], [("kept", s["rows_out"]), ("dropped", s["dropped"])]) for s in stages],
        {"kept": KEPT, "dropped": DROPPED},
        "rows per stage: kept and dropped",
    )
    rows = []
    for s in stages:
        reasons = sorted((s["by_reason"] or {}).items(), key=lambda kv: (-kv[1], kv[0]))
        reason_text = ", ".join(f"{escape(r)} {number(n)}" for r, n in reasons) or "-"
        flags = sorted((s["flagged"] or {}).items(), key=lambda kv: (-kv[1], kv[0]))
        flag_text = ", ".join(f"{escape(r)} {number(n)}" for r, n in flags) or "-"
        stage = escape(s["stage"])
        rows.append(
            f'<tr data-stage="{stage}"><td>{stage}</td>'
            + "".join(f'<td data-field="{f}">{number(s[f])}</td>' for f in ("rows_in", "rows_out", "dropped"))
            + f'<td data-field="by_reason">{reason_text}</td><td data-field="flagged">{flag_text}</td></tr>'
        )
    table = (
        '<table id="funnel"><thead><tr><th>stage</th><th>rows in</th><th>rows out</th><th>dropped</th>'
        "<th>drops by reason</th><th>kept with a flag</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    drops = [
        (f"{s['stage']}: {reason}", n)
        for s in stages
        for reason, n in sorted((s["by_reason"] or {}).items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    drop_chart = (
        bars(drops, "dropped rows by stage and reason", color=DROPPED, label_width=260) if drops else ""
    )
    body = chart + table + ("<h3>Drops by reason</h3>" + drop_chart if drop_chart else "")
    return _section(
        "Funnel",
        "funnel",
        body,
        "Every ingested row is either kept or dropped once, with a reason. Kept rows a stage flagged "
        "(verify: no_reference, a trace with nothing to check it against) are counted apart.",
    )


def _domains(con: duckdb.DuckDBPyConnection) -> str:
    mix = _rows(
        con,
        "SELECT coalesce(domain, 'unassigned') AS domain, count(*) AS n FROM kept GROUP BY 1 ORDER BY n DESC, 1",
    )
    if not mix:
        return _section("Domain mix", "domains", _empty("no rows survived"))
    colors = {row["domain"]: _domain_color(row["domain"]) for row in mix}
    splits = _rows(
        con,
        "SELECT domain, split, count(*) AS n, count(DISTINCT file) AS files FROM shards GROUP BY ALL ORDER BY 1, 2",
    )
    chart = stacked_bars(
        [("kept rows", [(m["domain"], m["n"]) for m in mix])], colors, "kept rows by domain", bar_height=28
    )
    table_rows = []
    for m in mix:
        per_split = {s["split"]: s for s in splits if s["domain"] == m["domain"]}
        cells = [f"<td>{escape(m['domain'])}</td>", f'<td data-field="rows">{number(m["n"])}</td>']
        for split in ("train", "val"):
            found = per_split.get(split)
            cells.append(f'<td data-field="{split}">{number(found["n"]) if found else 0}</td>')
        cells.append(f"<td>{sum(s['files'] for s in per_split.values())}</td>")
        table_rows.append(f'<tr data-domain="{escape(m["domain"])}">{"".join(cells)}</tr>')
    table = (
        '<table id="domains"><thead><tr><th>domain</th><th>kept rows</th><th>train</th><th>val</th>'
        f"<th>shard files</th></tr></thead><tbody>{''.join(table_rows)}</tbody></table>"
    )
    body = chart + table
    if "domain_rules" in _columns(con, "kept"):
        rules = _rows(
            con,
            """SELECT domain, domain_rules, count(*) AS n, round(avg(domain_confidence), 3) AS confidence
               FROM kept GROUP BY ALL ORDER BY n DESC LIMIT 12""",
        )
        body += "<h3>Why rows got their domain</h3>" + _table(
            ["domain", "rules that voted", "rows", "mean confidence"],
            [[r["domain"], r["domain_rules"], number(r["n"]), f"{r['confidence']:.3f}"] for r in rules],
        )
    return _section("Domain mix", "domains", body)


def _token_counter(manifest: dict[str, Any]) -> str | None:
    """The quality stage's token counter (a tokenizer name or "whitespace"), if it ran."""
    return next(
        (s.get("token_counter") for s in manifest.get("stages", []) if s.get("name") == "quality"), None
    )


def _lengths(con: duckdb.DuckDBPyConnection, counter: str | None) -> str:
    columns = _columns(con, "kept")
    if "n_tokens" in columns:
        length = "n_tokens"
        unit = "whitespace words" if counter in (None, "whitespace") else f"tokens ({counter})"
    else:
        # No quality stage, so no counts: characters, which DuckDB knows without a scan of the text
        # (a regex word split took 11 of the 19 s of a 300k-row ingest-only run).
        length = "length(concat_ws(' ', problem, reasoning, response))"
        unit = "characters (no quality stage ran)"
    # Aggregated in DuckDB: a report over millions of rows must not pull every length into Python.
    # Bins: [0, 16), then one per power of two from 16 up.
    stats = _rows(
        con,
        f"""SELECT domain, count(*) AS rows, quantile_disc(n, 0.5) AS median, max(n) AS top,
                   histogram(CASE WHEN n < 16 THEN 0 ELSE floor(log2(n))::INT - 3 END) AS bins
            FROM (SELECT coalesce(domain, 'unassigned') AS domain, coalesce({length}, 0) AS n FROM kept)
            GROUP BY domain ORDER BY domain""",
    )
    if not stats:
        return _section("Length per domain", "lengths", _empty("no rows survived"))
    top = max(s["top"] for s in stats)
    edges = [0] + [2**k for k in range(4, max(5, math.ceil(math.log2(max(top, 2)))) + 1)]
    labels = [f"{e:,}" if e < 1000 else f"{e // 1024}k" for e in edges]
    charts = []
    for s in stats:
        counts = [s["bins"].get(j, 0) for j in range(len(edges))]
        chart = histogram(
            list(zip(labels, counts, strict=True)),
            f"{s['domain']} length histogram",
            _domain_color(s["domain"]),
            x_title=f"{unit}, bins start at",
        )
        charts.append(
            f'<figure data-domain="{escape(s["domain"])}"><figcaption><b>{escape(s["domain"])}</b>: '
            f"{number(s['rows'])} rows, median {number(s['median'])}, max {number(s['top'])}</figcaption>"
            f"{chart}</figure>"
        )
    return _section(
        "Length per domain",
        "lengths",
        f'<div class="grid">{"".join(charts)}</div>',
        f"Lengths in {unit}; log-scale bins.",
    )


def _verification(con: duckdb.DuckDBPyConnection) -> str:
    rows = _rows(
        con,
        """SELECT t.source, v.status, count(*) AS n FROM verify v JOIN traces t USING (row_id)
           GROUP BY ALL ORDER BY t.source, v.status""",
    )
    if not rows:
        return _section("Verification", "verify", _empty("the verify stage has not run on this workspace"))
    per_source: dict[str, dict[str, int]] = {}
    for r in rows:
        per_source.setdefault(r["source"] or "-", {})[r["status"]] = r["n"]
    statuses = [s for s in STATUS_COLORS if any(s in v for v in per_source.values())]
    statuses += sorted({s for v in per_source.values() for s in v} - set(statuses))
    chart = stacked_bars(
        [
            (source, [(s, counts.get(s, 0)) for s in statuses if counts.get(s)])
            for source, counts in per_source.items()
        ],
        {s: STATUS_COLORS.get(s, "#999") for s in statuses},
        "verification status by source",
    )
    table_rows = []
    for source, c in per_source.items():
        checked = sum(n for s, n in c.items() if s not in UNCHECKED)
        rate = f"{100 * c.get('pass', 0) / checked:.1f}%" if checked else "-"
        table_rows.append(
            [source, number(checked), number(c.get("pass", 0)), rate]
            + [number(c.get(s, 0)) for s in UNCHECKED]
        )
    table = _table(
        ["source", "checked", "pass", "pass rate", "kept unverified (no_reference)", "prompts (no response)"],
        table_rows,
        "verify",
    )
    return _section("Verification pass rate by source", "verify", chart + table)


def _clusters(con: duckdb.DuckDBPyConnection) -> str:
    rows = _rows(
        con,
        """WITH c AS (
               SELECT stage, cluster_id, count(*) AS size, any_value(representative_row_id) AS rep
               FROM clusters GROUP BY stage, cluster_id
           )
           SELECT c.stage, c.cluster_id, c.size, t.source, t.problem
           FROM c LEFT JOIN traces t ON t.row_id = c.rep
           ORDER BY c.size DESC, c.stage, c.cluster_id LIMIT 15""",
    )
    if not rows:
        return _section(
            "Largest duplicate clusters",
            "clusters",
            _empty("no duplicate clusters (dedup has not run or found none)"),
        )
    totals = _rows(
        con,
        "SELECT stage, count(DISTINCT cluster_id) AS clusters, count(*) AS rows FROM clusters GROUP BY stage ORDER BY stage",
    )
    note = "; ".join(
        f"{t['stage']}: {number(t['rows'])} rows in {number(t['clusters'])} clusters" for t in totals
    )
    table = _table(
        ["stage", "cluster", "rows", "representative source", "representative problem"],
        [
            [r["stage"], str(r["cluster_id"]), number(r["size"]), r["source"] or "-", _snippet(r["problem"])]
            for r in rows
        ],
        "clusters",
    )
    return _section("Largest duplicate clusters", "clusters", table, note)


def _dropped_examples(con: duckdb.DuckDBPyConnection, manifest: dict[str, Any]) -> str:
    options = {s.get("name"): s.get("options") or {} for s in manifest.get("stages", [])}
    body = examples_html(con, options)
    note = "a seeded choice of rejected rows per stage and reason (the same rows on every run)"
    return _section("Dropped rows", "dropped", body or _empty("no row was dropped"), note)


def _decontamination_note(manifest: dict[str, Any]) -> str:
    """Whether decontaminate ran, and against which benchmarks."""
    stage = next((s for s in manifest.get("stages", []) if s.get("name") == "decontaminate"), None)
    if stage is None:
        return "decontaminate has not run"
    benchmarks = (stage.get("options") or {}).get("benchmarks") or []
    if isinstance(benchmarks, str):
        benchmarks = [benchmarks]
    if not benchmarks:
        return "decontaminate ran with no benchmarks configured (stages: decontaminate: benchmarks: [...]): nothing was checked"
    mode = (stage.get("options") or {}).get("mode", "drop")
    return f"decontaminate ran (mode: {mode}) against " + ", ".join(Path(str(b)).name for b in benchmarks)


def _contamination(con: duckdb.DuckDBPyConnection, manifest: dict[str, Any]) -> str:
    ran = _decontamination_note(manifest)
    per_benchmark = _rows(
        con,
        """SELECT benchmark, count(DISTINCT row_id) AS rows, count(DISTINCT benchmark_item) AS items
           FROM contamination GROUP BY benchmark ORDER BY rows DESC, benchmark""",
    )
    if not per_benchmark:
        return _section(
            "Contamination hits",
            "contamination",
            _empty("no benchmark overlap found" if ran.startswith("decontaminate ran (") else ran),
            ran,
        )
    chart = bars(
        [(b["benchmark"], b["rows"]) for b in per_benchmark],
        "contaminated rows per benchmark",
        color=PALETTE[3],
    )
    examples = _rows(
        con,
        """SELECT c.benchmark, c.benchmark_item, count(*) AS rows, min(c.matched_ngram) AS ngram,
                  min(t.problem) AS problem
           FROM contamination c LEFT JOIN traces t USING (row_id)
           GROUP BY c.benchmark, c.benchmark_item ORDER BY rows DESC, c.benchmark, c.benchmark_item LIMIT 15""",
    )
    table = _table(
        ["benchmark", "item", "training rows", "matched n-gram", "training problem"],
        [
            [
                e["benchmark"],
                str(e["benchmark_item"]),
                number(e["rows"]),
                _snippet(e["ngram"]),
                _snippet(e["problem"]),
            ]
            for e in examples
        ],
        "contamination",
    )
    return _section("Contamination hits", "contamination", chart + table, ran)


# Page ---------------------------------------------------------------------------------------------

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #222; background: #fafafa; }
header { background: #2f3e4e; color: #fff; padding: 18px 32px; }
header h1 { margin: 0; font-size: 22px; } header p { margin: 4px 0 0; color: #cfd8e3; font-size: 13px; }
main { padding: 8px 32px 40px; max-width: 1200px; }
section { background: #fff; border: 1px solid #e3e3e3; border-radius: 6px; padding: 14px 20px; margin: 16px 0; }
h2 { font-size: 17px; margin: 0 0 10px; } h3 { font-size: 14px; margin: 16px 0 6px; color: #444; }
table { border-collapse: collapse; margin: 10px 0; font-size: 13px; }
th, td { border-bottom: 1px solid #eee; padding: 4px 10px; text-align: left; vertical-align: top; }
td[data-field], td:nth-child(n+2) { font-variant-numeric: tabular-nums; }
th { background: #f3f5f7; }
.cards { display: flex; gap: 14px; flex-wrap: wrap; }
.card { border: 1px solid #e3e3e3; border-radius: 6px; padding: 10px 16px; min-width: 130px; background: #fdfdfd; }
.big { font-size: 24px; font-weight: 600; color: #2f3e4e; }
.note { color: #666; font-size: 13px; } .empty { color: #888; font-style: italic; }
.grid { display: flex; flex-wrap: wrap; gap: 12px; } figure { margin: 0; } figcaption { font-size: 13px; }
nav a { color: #cfd8e3; margin-right: 14px; font-size: 13px; }
"""


def _page(name: str, body: str) -> str:
    links = "".join(
        f'<a href="#{a}">{t}</a>'
        for a, t in (
            ("funnel", "funnel"),
            ("domains", "domains"),
            ("lengths", "lengths"),
            ("verify", "verification"),
            ("clusters", "duplicates"),
            ("dropped", "dropped rows"),
            ("contamination", "contamination"),
        )
    )
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>distillery report: {escape(name)}</title><style>{CSS}{EXAMPLES_CSS}</style></head><body>"
        f"<header><h1>Curation report: {escape(name)}</h1><p>generated {stamp} by distillery</p>"
        f"<nav>{links}</nav></header><main>{body}</main></body></html>\n"
    )
