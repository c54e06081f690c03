"""The report's "Dropped rows" section: for each stage and reason, a few rejected rows chosen by a
seeded hash (the same rows on every run), with the fields that explain the decision: verify's
extracted answer beside the reference, a duplicate beside the row it duplicates with the
differing words marked, the span that quality dropped a row for (the repeated n-gram or paragraph,
the foreign-script run) marked where it occurs, else the end of the response it judged.

The choice is made in DuckDB (one window over the rejected keys), so the section stays cheap on a
big workspace: only the chosen rows' text is read.
"""

from __future__ import annotations

import difflib
from html import escape
from typing import Any

import duckdb

from curate.report.latex import render, to_mathml
from curate.stages.quality import offending_span

PER_REASON = 3
SEED = "distillery-report"  # the salt of the seeded choice
TEXT = 600  # characters of a text shown in an example
LONGEST = 20_000  # characters of a duplicate pair compared (difflib is quadratic at worst)


def _cut(text: str | None, limit: int = TEXT, tail: bool = False) -> str:
    text = " ".join((text or "").split())
    if len(text) <= limit:
        return text
    return "…" + text[-(limit - 1) :] if tail else text[: limit - 1] + "…"


def picked(con: duckdb.DuckDBPyConnection, per_reason: int = PER_REASON) -> list[dict[str, Any]]:
    """Up to `per_reason` rejected rows per (stage, reason), pipeline order, with the fields the
    section shows."""
    cursor = con.execute(
        f"""WITH chosen AS (
                SELECT stage, reason, row_id, md5('{SEED}' || row_id::VARCHAR) AS draw FROM rejected
                QUALIFY row_number() OVER (PARTITION BY stage, reason ORDER BY draw) <= {per_reason}
            ),
            counts AS (SELECT stage, reason, count(*) AS dropped FROM rejected GROUP BY stage, reason),
            rows AS (
                SELECT row_id, problem, reasoning, response, reference, detail FROM rejected
                WHERE row_id IN (SELECT row_id FROM chosen)
            ),
            pairs AS (
                SELECT c.stage, c.row_id, c.representative_row_id, c.similarity FROM clusters c
                WHERE c.row_id IN (SELECT row_id FROM chosen)
            ),
            reps AS (
                SELECT row_id, problem, response FROM traces
                WHERE row_id IN (SELECT representative_row_id FROM pairs)
            )
            SELECT ch.stage, ch.reason, n.dropped, ch.row_id, r.problem, r.reasoning, r.response, r.reference,
                   r.detail,
                   v.extracted, v.detail AS verify_detail,
                   p.representative_row_id, p.similarity, rep.problem AS rep_problem, rep.response AS rep_response
            FROM chosen ch
            JOIN counts n USING (stage, reason)
            JOIN rows r USING (row_id)
            JOIN _stages s ON s.stage = ch.stage
            LEFT JOIN verify v ON ch.stage = 'verify' AND v.row_id = ch.row_id
            LEFT JOIN pairs p ON p.stage = ch.stage AND p.row_id = ch.row_id
            LEFT JOIN reps rep ON rep.row_id = p.representative_row_id
            ORDER BY s.stage_index, n.dropped DESC, ch.reason, ch.draw"""
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def marked_pair(left: str, right: str, words: int = 100) -> tuple[str, str]:
    """Both texts as HTML, the words that differ between them in <mark>: `words` words of each,
    from a little before the first difference (near duplicates often differ only late)."""
    a, b = left.split(), right.split()
    opcodes = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    first = next((op for op in opcodes if op[0] != "equal"), None)
    start_a = max(0, first[1] - 15) if first else 0
    start_b = start_a - first[1] + first[3] if first else 0
    out_a, out_b = ["…"] if start_a else [], ["…"] if start_b else []
    for tag, i1, i2, j1, j2 in opcodes:
        chunk_a = escape(" ".join(a[max(i1, start_a) : min(i2, start_a + words)]))
        chunk_b = escape(" ".join(b[max(j1, start_b) : min(j2, start_b + words)]))
        mark = tag != "equal"
        if chunk_a:
            out_a.append(f"<mark>{chunk_a}</mark>" if mark else chunk_a)
        if chunk_b:
            out_b.append(f"<mark>{chunk_b}</mark>" if mark else chunk_b)
    if len(a) > start_a + words:
        out_a.append("…")
    if len(b) > start_b + words:
        out_b.append("…")
    return " ".join(out_a), " ".join(out_b)


def assistant_text(reasoning: str | None, response: str | None) -> str:
    """The text quality judged, as far as the row holds it: the response, with the reasoning first
    when the response does not contain it (a trace whose reasoning came in a field of its own)."""
    response = response or ""
    return response if not reasoning or reasoning in response else f"{reasoning}\n\n{response}"


def marked_span(text: str, span: str, before: int = 200, after: int = 300) -> str:
    """HTML of `text` (whitespace collapsed) around the first occurrence of `span`, every occurrence
    in that window in <mark>; '' when the span is not in the text."""
    flat, needle = " ".join(text.split()), " ".join(span.split())
    at = flat.find(needle) if needle else -1
    if at < 0:
        return ""
    start, end = max(0, at - before), min(len(flat), at + len(needle) + after)
    window = flat[start:end]
    pieces = window.split(needle)
    marked = f"<mark>{render(needle)}</mark>".join(render(piece) for piece in pieces)
    return ("…" if start else "") + marked + ("…" if end < len(flat) else "")


def _field(name: str, value: str, raw: bool = False) -> str:
    return (
        f'<div class="field"><span class="label">{escape(name)}</span> '
        f'<span data-field="{escape(name)}">{value if raw else escape(value)}</span></div>'
    )


def _formula(text: str | None, empty: str) -> str:
    """An extracted answer or a reference, as a formula when it parses (`\\frac{1}{2}`), else as text."""
    text = _cut(text, 200)
    if not text:
        return escape(empty)
    try:
        return to_mathml(text)
    except (ValueError, IndexError):
        return escape(text)


def _text(label: str, text: str) -> str:
    return f'<div class="label">{escape(label)}</div><p class="text">{render(text)}</p>'


def _example(row: dict[str, Any], options: dict[str, dict[str, Any]]) -> str:
    stage = row["stage"]
    fields = [_field("row", str(row["row_id"])), _field("reason", row["reason"])]
    if stage == "verify":
        fields += [
            _field("extracted", _formula(row["extracted"], "(nothing extracted)"), raw=True),
            _field("reference", _formula(row["reference"], "(none)"), raw=True),
            _field("verdict", row["verify_detail"] or row["detail"] or ""),
        ]
    else:
        fields.append(_field("detail", row["detail"] or ""))
    span = marked = ""
    if stage == "quality":
        text = assistant_text(row["reasoning"], row["response"])
        span = offending_span(row["reason"], row["problem"], text, options.get("quality", {})) or ""
        marked = marked_span(text, span) if span else ""
        if marked:
            fields.append(_field("span", _cut(span, 200)))
    body = ""
    if row["representative_row_id"] is not None:
        this = f"{row['problem'] or ''} ⟶ {row['response'] or ''}"[:LONGEST]
        kept = f"{row['rep_problem'] or ''} ⟶ {row['rep_response'] or ''}"[:LONGEST]
        left, right = marked_pair(this, kept)
        similarity = f", similarity {row['similarity']:.2f}" if row["similarity"] is not None else ""
        body = (
            '<div class="pair">'
            f'<div><div class="label">dropped row {row["row_id"]}</div><p class="text">{left}</p></div>'
            f'<div><div class="label">kept row {row["representative_row_id"]}{similarity}</div>'
            f'<p class="text">{right}</p></div></div>'
        )
    else:
        body = _text("problem", _cut(row["problem"], 300))
        if marked:  # the offending span, marked where it occurs
            body += f'<div class="label">where it occurs</div><p class="text" data-span>{marked}</p>'
        elif stage in ("quality", "verify"):  # the end of the response: truncation, loops, the final answer
            body += _text("end of response", _cut(row["response"], 400, tail=True))
        elif row["response"]:
            body += _text("response", _cut(row["response"], 300))
    attrs = f'data-stage="{escape(stage)}" data-reason="{escape(row["reason"])}"'
    return f'<div class="example" {attrs}>{"".join(fields)}{body}</div>'


def examples_html(con: duckdb.DuckDBPyConnection, options: dict[str, dict[str, Any]] | None = None) -> str:
    """The examples of every (stage, reason) with drops, grouped under a heading each; '' if none.
    `options` are the stages' options by stage name (the manifest's), which say what a check used."""
    out, heading = [], None
    for row in picked(con):
        key = (row["stage"], row["reason"])
        if key != heading:
            heading = key
            out.append(
                f"<h3>{escape(row['stage'])} · {escape(row['reason'])} ({row['dropped']:,} dropped)</h3>"
            )
        out.append(_example(row, options or {}))
    return "".join(out)


CSS = """
.example { border: 1px solid #eee; border-left: 3px solid #e15759; border-radius: 4px; padding: 6px 10px; margin: 6px 0; font-size: 13px; }
.example .label { color: #777; font-size: 12px; } .example .field { display: inline-block; margin-right: 16px; }
.example .text { margin: 2px 0 6px; white-space: pre-wrap; word-break: break-word; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; } mark { background: #ffe08a; }
"""
