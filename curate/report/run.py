"""The report of a `distillery run` (DIR/report/index.html): each training step's loss curve from
its metrics.jsonl, the eval table (models x domains, pass@1) and the merge's retention (what share
of each domain student's score the merged model keeps), the domain weights of a DDK-reweighted
training step over its steps, and the variants' table. One self-contained page, like the
curation report: inline SVG, no scripts, nothing from the network."""

from __future__ import annotations

import json
import os
from html import escape
from pathlib import Path
from typing import Any

from curate.report.svg import PALETTE

WIDTH, HEIGHT, PAD = 560, 220, 40


def _curves(out: Path) -> list[tuple[str, list[tuple[int, float]]]]:
    """(step folder, [(step, loss)]) of every training step of the run."""
    found = []
    for path in sorted(out.rglob("metrics.jsonl")):
        if "checkpoint" in path.parent.name:
            continue
        points = []
        for line in path.read_text().splitlines():
            record = json.loads(line) if line.strip() else {}
            if isinstance(record.get("loss"), int | float) and "step" in record:
                points.append((int(record["step"]), float(record["loss"])))
        if points:
            found.append((path.parent.relative_to(out).as_posix(), points))
    return found


def loss_chart(label: str, points: list[tuple[int, float]], color: str) -> str:
    """An SVG line chart of one loss curve, axes labelled with the first and last step and the
    loss range."""
    steps = [s for s, _ in points]
    losses = [v for _, v in points]
    x0, x1 = min(steps), max(steps) if max(steps) > min(steps) else min(steps) + 1
    y0, y1 = min(losses), max(losses) if max(losses) > min(losses) else min(losses) + 1

    def xy(step: int, loss: float) -> str:
        x = PAD + (step - x0) / (x1 - x0) * (WIDTH - 2 * PAD)
        y = HEIGHT - PAD - (loss - y0) / (y1 - y0) * (HEIGHT - 2 * PAD)
        return f"{x:.1f},{y:.1f}"

    line = " ".join(xy(s, v) for s, v in points)
    return (
        f'<figure data-curve="{escape(label)}"><svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" '
        f'height="{HEIGHT}" role="img" aria-label="loss of {escape(label)}">'
        f'<rect x="{PAD}" y="{PAD}" width="{WIDTH - 2 * PAD}" height="{HEIGHT - 2 * PAD}" fill="#fbfbfb" stroke="#ddd"/>'
        f'<polyline points="{line}" fill="none" stroke="{color}" stroke-width="2"/>'
        f'<text x="{PAD}" y="{HEIGHT - 12}" font-size="11">step {x0}</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 12}" font-size="11" text-anchor="end">step {max(steps)}</text>'
        f'<text x="4" y="{PAD + 4}" font-size="11">{y1:.3f}</text>'
        f'<text x="4" y="{HEIGHT - PAD}" font-size="11">{y0:.3f}</text></svg>'
        f"<figcaption>{escape(label)}: loss {losses[0]:.3f} → {losses[-1]:.3f} over {len(points)} logged steps"
        "</figcaption></figure>"
    )


def _domain_weights(out: Path) -> list[tuple[str, dict[str, list[tuple[int, float]]]]]:
    """(step folder, domain -> [(step, weight)]) of every training step that reweighted its domains
    (the `ddk_weight/<domain>` records of distill.sft.ddk in its metrics.jsonl)."""
    found = []
    for path in sorted(out.rglob("metrics.jsonl")):
        series: dict[str, list[tuple[int, float]]] = {}
        for line in path.read_text().splitlines():
            record = json.loads(line) if line.strip() else {}
            for key, value in record.items():
                if key.startswith("ddk_weight/"):
                    series.setdefault(key.split("/", 1)[1], []).append((int(record["step"]), float(value)))
        if series and "checkpoint" not in path.parent.name:
            found.append((path.parent.relative_to(out).as_posix(), series))
    return found


def weights_chart(label: str, series: dict[str, list[tuple[int, float]]]) -> str:
    """An SVG chart of the domain weights over the steps (weights on 0..1), one line per domain."""
    steps = [s for points in series.values() for s, _ in points]
    x0, x1 = min(steps), max(steps) if max(steps) > min(steps) else min(steps) + 1

    def xy(step: int, weight: float) -> str:
        x = PAD + (step - x0) / (x1 - x0) * (WIDTH - 2 * PAD)
        return f"{x:.1f},{HEIGHT - PAD - weight * (HEIGHT - 2 * PAD):.1f}"

    lines, legend = [], []
    for i, (domain, points) in enumerate(sorted(series.items())):
        color = PALETTE[i % len(PALETTE)]
        line = " ".join(xy(s, w) for s, w in points)
        lines.append(
            f'<polyline data-domain="{escape(domain)}" points="{line}" fill="none" stroke="{color}" stroke-width="2"/>'
        )
        legend.append(
            f'<text x="{WIDTH - PAD + 4}" y="{PAD + 14 * i + 4}" font-size="11" fill="{color}">{escape(domain)}</text>'
        )
    last = ", ".join(f"{d} {points[-1][1]:.2f}" for d, points in sorted(series.items()))
    return (
        f'<figure data-weights="{escape(label)}"><svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH + 60}" '
        f'height="{HEIGHT}" role="img" aria-label="domain weights of {escape(label)}">'
        f'<rect x="{PAD}" y="{PAD}" width="{WIDTH - 2 * PAD}" height="{HEIGHT - 2 * PAD}" fill="#fbfbfb" stroke="#ddd"/>'
        + "".join(lines)
        + "".join(legend)
        + f'<text x="{PAD}" y="{HEIGHT - 12}" font-size="11">step {x0}</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 12}" font-size="11" text-anchor="end">step {max(steps)}</text>'
        f'<text x="4" y="{PAD + 4}" font-size="11">1.0</text><text x="4" y="{HEIGHT - PAD}" font-size="11">0.0</text>'
        f"</svg><figcaption>{escape(label)}: domain weights at {len(steps) // len(series)} updates; "
        f"last {escape(last)}</figcaption></figure>"
    )


def _variants_table(rows: list[dict[str, Any]]) -> str:
    domains = sorted({d for row in rows for d in row["pass@1"]})
    head = "".join(f"<th>{escape(h)}</th>" for h in ["variant", "model", *domains, "rows", "tokens", "steps"])
    body = "".join(
        f'<tr data-variant="{escape(r["variant"])}" data-model="{escape(r["model"])}">'
        f"<td>{escape(r['variant'])}</td><td>{escape(r['model'])}</td>"
        + "".join(
            f'<td data-field="{escape(d)}">{r["pass@1"][d]:.3f}</td>' if d in r["pass@1"] else "<td>-</td>"
            for d in domains
        )
        + "".join("<td>-</td>" if r[k] is None else f"<td>{r[k]:,}</td>" for k in ("rows", "tokens", "steps"))
        + "</tr>"
        for r in rows
    )
    return f'<table id="variants"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _eval_table(table: dict[str, dict[str, float]]) -> str:
    domains = sorted({d for scores in table.values() for d in scores})
    head = "".join(f"<th>{escape(d)}</th>" for d in ["model", *domains])
    rows = "".join(
        f'<tr data-model="{escape(model)}"><td>{escape(model)}</td>'
        + "".join(
            f'<td data-field="{escape(d)}">{scores[d]:.3f}</td>' if d in scores else "<td>-</td>"
            for d in domains
        )
        + "</tr>"
        for model, scores in table.items()
    )
    return f'<table id="eval"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def retention(table: dict[str, dict[str, float]]) -> dict[str, dict[str, float | None]]:
    """merged model -> domain -> its pass@1 over the domain student's (students are labelled by
    their domain in the eval table); None where the student scored 0 (no share to keep)."""
    merged = [m for m in table if "merge" in m]
    return {
        m: {d: table[m][d] / table[d][d] if table[d][d] else None for d in table[m] if d in table.get(d, {})}
        for m in merged
    }


def _retention_table(kept: dict[str, dict[str, float | None]]) -> str:
    if not any(kept.values()):
        return '<p class="empty">no merged model and domain student both evaluated</p>'
    rows = "".join(
        f'<tr data-model="{escape(m)}"><td>{escape(m)}</td><td>{escape(d)}</td>'
        f'<td data-field="retention">{"-" if share is None else f"{100 * share:.1f}%"}</td></tr>'
        for m, shares in kept.items()
        for d, share in sorted(shares.items())
    )
    return (
        '<table id="retention"><thead><tr><th>merged model</th><th>domain</th>'
        f"<th>share of the student's pass@1</th></tr></thead><tbody>{rows}</tbody></table>"
    )


CSS = """
body { font-family: system-ui, sans-serif; margin: 0; color: #222; background: #fafafa; }
header { background: #2f3e4e; color: #fff; padding: 18px 32px; } header h1 { margin: 0; font-size: 22px; }
main { padding: 8px 32px 40px; max-width: 1200px; }
section { background: #fff; border: 1px solid #e3e3e3; border-radius: 6px; padding: 14px 20px; margin: 16px 0; }
h2 { font-size: 17px; margin: 0 0 10px; } table { border-collapse: collapse; font-size: 13px; }
th, td { border-bottom: 1px solid #eee; padding: 4px 10px; text-align: left; } th { background: #f3f5f7; }
.grid { display: flex; flex-wrap: wrap; gap: 12px; } figure { margin: 0; } figcaption { font-size: 13px; }
.empty { color: #888; font-style: italic; }
"""


def build_run_report(out: str | Path) -> str:
    root = Path(out)
    results: dict[str, Any] = json.loads((root / "results.json").read_text())
    table = results.get("eval") or {}
    charts = "".join(
        loss_chart(label, points, PALETTE[i % len(PALETTE)])
        for i, (label, points) in enumerate(_curves(root))
    )
    sections = [
        (
            "Loss curves",
            f'<div class="grid">{charts}</div>' if charts else '<p class="empty">no training step logged</p>',
        ),
        ("Eval (pass@1)", _eval_table(table) if table else '<p class="empty">no model evaluated</p>'),
        ("Merge retention", _retention_table(retention(table))),
    ]
    weights = "".join(weights_chart(label, series) for label, series in _domain_weights(root))
    if weights:
        sections.append(("Domain weights (DDK)", f'<div class="grid">{weights}</div>'))
    variants = (results.get("variants") or {}).get("table")
    if variants:
        sections.append(
            ("Variants (pass@1 of the models each variant made itself)", _variants_table(variants))
        )
    body = "".join(f"<section><h2>{escape(t)}</h2>{b}</section>" for t, b in sections)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>distillery run: {escape(root.name)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>Run report: {escape(root.name)}</h1></header><main>{body}</main></body></html>\n"
    )


def write_run_report(out: str | Path) -> Path:
    """Write (atomically) DIR/report/index.html for a run folder holding results.json."""
    folder = Path(out) / "report"
    folder.mkdir(exist_ok=True)
    tmp = folder / ".index.html.tmp"
    tmp.write_text(build_run_report(out), encoding="utf-8")
    os.replace(tmp, folder / "index.html")
    return folder / "index.html"
