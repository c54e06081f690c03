"""Small inline-SVG charts for the curation report: no JavaScript, no fonts or files from anywhere.

Each function returns one `<svg>` element as a string, sized in CSS pixels, with a <title> per
mark so hovering shows the exact number.
"""

from __future__ import annotations

from html import escape

PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
KEPT, DROPPED = "#59a14f", "#e15759"
FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" font-size="12"'


def number(value: float) -> str:
    """1234567 -> 1,234,567; fractions keep two decimals."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _svg(width: int, height: int, body: list[str], label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(label)}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" {FONT}>' + "".join(body) + "</svg>"
    )


def _rect(x: float, y: float, w: float, h: float, color: str, tip: str) -> str:
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{h:.1f}" fill="{color}">'
        f"<title>{escape(tip)}</title></rect>"
    )


def _text(
    x: float, y: float, text: str, anchor: str = "start", color: str = "#333", weight: str = "normal"
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{color}" font-weight="{weight}">'
        f"{escape(text)}</text>"
    )


def stacked_bars(
    rows: list[tuple[str, list[tuple[str, float]]]],
    colors: dict[str, str],
    label: str,
    width: int = 760,
    label_width: int = 180,
    bar_height: int = 20,
    gap: int = 8,
    show_total: bool = True,
    legend: bool = True,
) -> str:
    """Horizontal bars, one per row, each split into named segments; a legend on top."""
    legend_names = list(dict.fromkeys(name for _, segments in rows for name, _ in segments)) if legend else []
    top = 28 if legend_names else 6
    plot = width - label_width - 90
    scale = max((sum(v for _, v in segs) for _, segs in rows), default=0) or 1
    body, x = [], label_width
    for name in legend_names:
        body.append(_rect(x, 6, 12, 12, colors.get(name, "#999"), name))
        body.append(_text(x + 16, 16, name))
        x += 28 + 7 * len(name)
    for i, (row_label, segments) in enumerate(rows):
        y = top + i * (bar_height + gap)
        body.append(_text(label_width - 8, y + bar_height * 0.72, row_label, anchor="end"))
        offset = label_width
        total = sum(v for _, v in segments)
        for name, value in segments:
            w = plot * value / scale
            share = f" ({100 * value / total:.1f}%)" if total else ""
            body.append(
                _rect(
                    offset,
                    y,
                    w,
                    bar_height,
                    colors.get(name, "#999"),
                    f"{row_label} - {name}: {number(value)}{share}",
                )
            )
            offset += w
        if show_total:
            body.append(_text(offset + 6, y + bar_height * 0.72, number(total)))
    height = top + len(rows) * (bar_height + gap) + 4
    return _svg(width, height, body, label)


def bars(rows: list[tuple[str, float]], label: str, color: str = PALETTE[0], **kwargs) -> str:
    """Plain horizontal bars, one colour, no legend."""
    segments = [(name, [(name, value)]) for name, value in rows]
    return stacked_bars(segments, {name: color for name, _ in rows}, label, legend=False, **kwargs)


def histogram(
    counts: list[tuple[str, int]],
    label: str,
    color: str = PALETTE[0],
    width: int = 360,
    height: int = 170,
    x_title: str = "",
) -> str:
    """Vertical bars over ordered bins; `counts` is (bin label, count), every other label drawn."""
    left, bottom, top = 40, 34, 10
    plot_w, plot_h = width - left - 8, height - bottom - top
    peak = max((c for _, c in counts), default=0) or 1
    step = plot_w / max(len(counts), 1)
    body = [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 8}" y2="{top + plot_h}" stroke="#999"/>',
        _text(left - 4, top + 9, number(peak), anchor="end", color="#777"),
        _text(left - 4, top + plot_h, "0", anchor="end", color="#777"),
    ]
    for i, (bin_label, count) in enumerate(counts):
        h = plot_h * count / peak
        body.append(
            _rect(left + i * step + 1, top + plot_h - h, step - 2, h, color, f"{bin_label}: {number(count)}")
        )
        if i % 2 == 0:
            body.append(
                _text(left + (i + 0.5) * step, top + plot_h + 14, bin_label, anchor="middle", color="#555")
            )
    if x_title:
        body.append(_text(left + plot_w / 2, height - 4, x_title, anchor="middle", color="#555"))
    return _svg(width, height, body, label)
