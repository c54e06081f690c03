"""The report of a `distillery run`: loss curves from each training step's metrics.jsonl, the eval
table and the merge retention, self-contained, rendered by headless Chromium."""

from __future__ import annotations

import json
import re

from tests.curate.test_report import chromium
from tests.distill.test_recipe import first_run  # noqa: F401  (the tiny recipe, run once here)


def test_run_writes_a_self_contained_report(first_run):  # noqa: F811
    _, out, results, _ = first_run
    html = (out / "report" / "index.html").read_text()
    for forbidden in ("<script", "<link", "<img", "<iframe", "src=", "url(", "@import"):
        assert forbidden not in html
    curves = re.findall(r'<figure data-curve="([^"]+)">', html)
    logged = sorted(p.parent.relative_to(out).as_posix() for p in out.rglob("metrics.jsonl"))
    assert sorted(curves) == logged and {"students/math", "joint"} <= set(curves)
    records = [json.loads(line) for line in (out / "students/math/metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert f"students/math: loss {losses[0]:.3f} → {losses[-1]:.3f}" in html


def test_rendered_run_report_shows_the_eval_table_and_retention(first_run, tmp_path):  # noqa: F811
    _, out, results, _ = first_run
    dom = chromium(tmp_path, "--dump-dom", (out / "report" / "index.html").as_uri())
    table = re.search(r'<table id="eval">(.*?)</table>', dom, re.S).group(1)
    for model, scores in results["eval"].items():
        row = re.search(rf'<tr data-model="{re.escape(model)}">(.*?)</tr>', table, re.S).group(1)
        cells = dict(re.findall(r'<td data-field="([^"]+)">([^<]*)</td>', row))
        assert cells == {d: f"{v:.3f}" for d, v in scores.items()}
    merged, students = results["eval"]["merged"], results["eval"]
    shares = re.findall(
        r'<tr data-model="merged"><td>merged</td><td>([a-z]+)</td><td data-field="retention">([^<]*)</td>',
        dom,
    )
    expected = {d: f"{100 * merged[d] / students[d][d]:.1f}%" if students[d][d] else "-" for d in merged}
    assert dict(shares) == expected and set(expected) == {"math", "science"}
