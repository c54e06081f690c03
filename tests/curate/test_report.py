"""The curation report: self-contained, rendered by headless Chromium, same numbers as the SQL views."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

import sql
from curate.pipeline import curate
from curate.report import write_report
from curate.stages.normalize import Normalize
from tests.conftest import shared_file
from tests.curate.test_quality import run_pipeline

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # any network fetch would fail: the page must not need one
]

# Pixel statistics of a PNG, computed by Chromium itself on a canvas (no image library needed).
PIXEL_HARNESS = """<!DOCTYPE html><html><body><pre id="out">pending</pre><script>
const img = new Image();
img.onload = () => {
  const c = document.createElement("canvas");
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const ctx = c.getContext("2d"); ctx.drawImage(img, 0, 0);
  const d = ctx.getImageData(0, 0, c.width, c.height).data;
  let n = 0, sum = 0, sq = 0; const colors = new Set();
  for (let i = 0; i < d.length; i += 4) {
    const v = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
    sum += v; sq += v * v; n++;
    if (colors.size < 10000) colors.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
  }
  const mean = sum / n;
  document.getElementById("out").textContent = JSON.stringify(
    {width: c.width, height: c.height, mean: mean, std: Math.sqrt(sq / n - mean * mean), colors: colors.size});
};
img.src = "data:image/png;base64,__PNG__";
</script></body></html>"""


def chromium(tmp_path: Path, *args: str) -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium package)")
    profile = tmp_path / "chromium-profile"
    command = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class Cells(HTMLParser):
    """Text of every element with `data-field`, keyed by (the row's data-stage/data-domain, field)."""

    def __init__(self):
        super().__init__()
        self.cells: dict[tuple[str | None, str], str] = {}
        self.row: str | None = None
        self.field: str | None = None
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr":
            self.row = attrs.get("data-stage") or attrs.get("data-domain")
        if "data-field" in attrs:
            self.field, self.text = attrs["data-field"], []

    def handle_data(self, data):
        if self.field:
            self.text.append(data)

    def handle_endtag(self, tag):
        if self.field and tag in ("td", "div"):
            self.cells[(self.row if tag == "td" else None, self.field)] = "".join(self.text).strip()
            self.field = None


def number(text: str) -> int:
    return int(text.replace(",", ""))


@pytest.fixture(scope="module")
def report_ws(tmp_path_factory) -> Path:
    """The default pipeline on real data with something in every section: Qwen samples (duplicates,
    verification failures), HumanEval (code), Codeforces (prompts only) and MATH-500 as a benchmark
    that five Qwen problems come from."""
    inputs = [
        shared_file(f)
        for f in ("math/qwen_math_cot_100.jsonl", "code/humaneval.jsonl", "code/codeforces.jsonl")
    ]
    config = {"stages": {"decontaminate": {"benchmarks": [str(shared_file("math/math500.jsonl"))]}}}
    ws = tmp_path_factory.mktemp("report") / "ws"
    curate([str(p) for p in inputs], ws, config, progress=False)
    return ws


def test_curate_writes_a_self_contained_report(report_ws):
    page = (report_ws / "report" / "index.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    # The markup and the style sheet, without the page's text: the rows shown as examples may
    # quote anything (a URL, HTML code), escaped, and text loads nothing.
    style = re.search(r"<style>(.*?)</style>", page, re.S).group(1)
    html = re.sub(r">[^<]*<", "><", page.replace(style, "")) + style
    for forbidden in ("<script", "<link", "<img", "<iframe", "src=", "url(", "@import"):
        assert forbidden not in html, f"the report must not load anything ({forbidden})"
    assert set(re.findall(r'href="([^"]*)"', html)) <= {
        f"#{a}" for a in ("funnel", "domains", "lengths", "verify", "clusters", "dropped", "contamination")
    }
    assert set(re.findall(r"https?://[^\"' )]+", html)) == {"http://www.w3.org/2000/svg"}, (
        "only the SVG namespace"
    )
    assert html.count("<svg") >= 6, (
        "funnel, drops, domain mix, a histogram per domain, verification, contamination"
    )


def test_rendered_report_shows_the_funnel_view_numbers(report_ws, tmp_path):
    dom = chromium(tmp_path, "--dump-dom", (report_ws / "report" / "index.html").as_uri())
    cells = Cells()
    cells.feed(dom)
    con = sql.connect(report_ws)
    funnel = con.execute("SELECT stage, rows_in, rows_out, dropped, by_reason FROM funnel").fetchall()
    assert len(funnel) == 10
    for stage, rows_in, rows_out, dropped, by_reason in funnel:
        assert number(cells.cells[(stage, "rows_in")]) == rows_in
        assert number(cells.cells[(stage, "rows_out")]) == rows_out
        assert number(cells.cells[(stage, "dropped")]) == dropped
        shown = dict(re.findall(r"(\w+) ([\d,]+)", cells.cells[(stage, "by_reason")]))
        assert {r: number(n) for r, n in shown.items()} == (by_reason or {})
    assert number(cells.cells[(None, "ingested")]) == con.execute("SELECT count(*) FROM traces").fetchone()[0]
    assert number(cells.cells[(None, "kept")]) == con.execute("SELECT count(*) FROM kept").fetchone()[0]
    for domain, rows in con.execute("SELECT domain, count(*) FROM kept GROUP BY 1").fetchall():
        assert number(cells.cells[(domain, "rows")]) == rows
        for split, n in con.execute(
            "SELECT split, count(*) FROM shards WHERE domain = ? GROUP BY 1", [domain]
        ).fetchall():
            assert number(cells.cells[(domain, split)]) == n


def number_text(n: int) -> str:
    return f"{n:,}"


def test_report_sections_have_the_real_data(report_ws):
    html = (report_ws / "report" / "index.html").read_text()
    con = sql.connect(report_ws)
    pass_rate = con.execute(
        """SELECT 100.0 * count(*) FILTER (WHERE v.status = 'pass') / count(*) FROM verify v
           JOIN traces t USING (row_id) WHERE t.source = 'qwen_math_cot_100'"""
    ).fetchone()[0]
    assert 80 < pass_rate < 100 and f"{pass_rate:.1f}%" in html
    # Codeforces rows are prompts: counted apart, never as failed answers
    prompts = con.execute(
        """SELECT count(*) FROM verify v JOIN traces t USING (row_id)
           WHERE t.source = 'codeforces' AND v.status = 'prompt'"""
    ).fetchone()[0]
    assert prompts > 300
    table = re.search(r'<table id="verify">(.*?)</table>', html, re.S).group(1)
    row = re.search(r"<tr><td>codeforces</td>(.*?)</tr>", table, re.S).group(1)
    assert re.findall(r"<td>([^<]*)</td>", row) == ["0", "0", "-", "0", number_text(prompts)]
    biggest = con.execute(
        "SELECT count(*) AS n FROM clusters GROUP BY stage, cluster_id ORDER BY n DESC LIMIT 1"
    ).fetchone()[0]
    assert biggest >= 2 and re.search(rf'<table id="clusters">.*?<td>{biggest}</td>', html, re.S)
    hits = con.execute(
        "SELECT count(DISTINCT row_id) FROM contamination WHERE benchmark = 'math500'"
    ).fetchone()[0]
    assert hits >= 5 and "math500" in html
    assert 'data-domain="math"' in html and 'data-domain="code"' in html and "length histogram" in html


def pixel_stats(tmp_path: Path, page: Path) -> dict:
    """Screenshot `page` at 1280x2000 and measure its pixels (luminance mean and spread, colours)."""
    shot = tmp_path / f"{page.stem}.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri())
    harness = tmp_path / f"{page.stem}-pixels.html"
    harness.write_text(PIXEL_HARNESS.replace("__PNG__", base64.b64encode(shot.read_bytes()).decode()))
    dom = chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", harness.as_uri())
    return json.loads(re.search(r'<pre id="out">([^<]*)</pre>', dom).group(1))


def test_screenshot_is_a_real_page(report_ws, tmp_path):
    stats = pixel_stats(tmp_path, report_ws / "report" / "index.html")
    assert (stats["width"], stats["height"]) == (1280, 2000)
    assert stats["std"] > 15 and stats["colors"] > 50, f"the screenshot looks blank: {stats}"
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>")
    empty = pixel_stats(tmp_path, blank)
    assert empty["std"] < 1 and empty["colors"] <= 2, "the check tells a blank page apart"


def test_report_of_an_early_workspace_says_what_has_not_run(tmp_path):
    ws = run_pipeline(tmp_path, [{"problem": "What is 1 + 1?", "response": "$\\boxed{2}$"}], [Normalize()])
    html = write_report(ws.root).read_text()
    assert "the verify stage has not run" in html and "no duplicate clusters" in html
    assert 'data-stage="normalize"' in html
    # No quality stage: lengths in characters of problem, reasoning and response ("What is 1 + 1?" + " " + "$\boxed{2}$").
    assert "Lengths in characters (no quality stage ran)" in html and "max 26</figcaption>" in html


class Examples(HTMLParser):
    """Each rendered dropped-row example: its stage, reason and the text of its data-field cells."""

    def __init__(self):
        super().__init__()
        self.examples: list[dict] = []
        self.field: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "example" in (attrs.get("class") or "").split():
            self.examples.append({"stage": attrs["data-stage"], "reason": attrs["data-reason"], "fields": {}})
        elif attrs.get("data-field") and self.examples:
            self.field = attrs["data-field"]
            self.examples[-1]["fields"][self.field] = ""

    def handle_endtag(self, tag):
        self.field = None

    def handle_data(self, data):
        if self.field:
            self.examples[-1]["fields"][self.field] += data


def test_rendered_report_shows_an_example_of_every_drop_with_its_reason(report_ws, tmp_path):
    dom = chromium(tmp_path, "--dump-dom", (report_ws / "report" / "index.html").as_uri())
    parser = Examples()
    parser.feed(dom)
    shown = {(e["stage"], e["reason"]) for e in parser.examples}
    con = sql.connect(report_ws)
    drops = set(con.execute("SELECT DISTINCT stage, reason FROM rejected").fetchall())
    assert {stage for stage, _ in drops} >= {"exact_dedup", "near_dedup", "verify"}
    assert shown == drops, "every (stage, reason) with drops has an example"
    for example in parser.examples:
        row = con.execute(
            "SELECT reason FROM rejected WHERE row_id = ?", [int(example["fields"]["row"])]
        ).fetchone()
        assert row == (example["reason"],), "the example is a real rejected row with its own reason"
    failed = [e for e in parser.examples if e["reason"] == "fail"]
    assert failed and all({"extracted", "reference", "verdict"} <= set(e["fields"]) for e in failed)
    extracted = con.execute(
        "SELECT extracted FROM verify WHERE row_id = ?", [int(failed[0]["fields"]["row"])]
    ).fetchone()[0]
    assert extracted and " ".join(extracted.split())[:150] in failed[0]["fields"]["extracted"]


def test_near_duplicate_examples_show_the_pair_with_differences_marked(report_ws):
    html = (report_ws / "report" / "index.html").read_text()
    pairs = re.findall(r'data-stage="near_dedup".*?<div class="pair">(.*?)</div></div></div>', html, re.S)
    assert pairs and all("kept row" in p and "dropped row" in p for p in pairs)
    assert any("<mark>" in p for p in pairs), "a near duplicate differs somewhere, and that is marked"


def test_marked_pair_marks_only_the_differing_words():
    from curate.report.examples import marked_pair

    left, right = marked_pair("what is 2 + 2 ?", "what is 3 + 2 ?")
    assert left == "what is <mark>2</mark> + 2 ?" and right == "what is <mark>3</mark> + 2 ?"
    # a late difference is shown, with the words before it cut
    long = " ".join(f"w{i}" for i in range(300))
    left, right = marked_pair(long, long.replace("w200", "x200"))
    assert left.startswith("… w185 ") and "<mark>w200</mark>" in left and "<mark>x200</mark>" in right


def test_contamination_section_says_whether_and_against_what_decontamination_ran(report_ws, tmp_path):
    html = (report_ws / "report" / "index.html").read_text()
    assert "decontaminate ran (mode: drop) against math500.jsonl" in html
    ws = run_pipeline(tmp_path, [{"problem": "What is 1 + 1?", "response": "$\\boxed{2}$"}], [Normalize()])
    assert "decontaminate has not run" in write_report(ws.root).read_text()


def test_latex_becomes_mathml_and_what_does_not_parse_stays_text():
    from curate.report.latex import render

    html = render(r"Compute $\frac{1}{2} + x^2_i$ and \(\sqrt[3]{8}\), $\boxed{\pi}$; $\frac{1}{$ costs $5")
    assert html.count("<math>") == 3
    assert "<mfrac><mrow><mn>1</mn></mrow><mrow><mn>2</mn></mrow></mfrac>" in html
    assert "<msubsup><mi>x</mi><mi>i</mi><mn>2</mn></msubsup>" in html
    assert "<mroot><mrow><mn>8</mn></mrow><mrow><mn>3</mn></mrow></mroot>" in html and "<mi>π</mi>" in html
    assert html.endswith(r"; $\frac{1}{$ costs $5"), "an unclosed or broken formula stays as its text"
    assert render("a < b & c") == "a &lt; b &amp; c"


def test_rendered_report_draws_the_examples_latex_as_mathml(report_ws, tmp_path):
    dom = chromium(tmp_path, "--dump-dom", (report_ws / "report" / "index.html").as_uri())
    dropped = re.search(r'<section id="dropped">(.*?)</section>', dom, re.S).group(1)
    assert dropped.count("<math") >= 3 and "<mfrac>" in dropped
    visible = re.sub(r"<annotation[^>]*>.*?</annotation>", "", dropped, flags=re.S)
    problems = re.findall(r'<div class="label">problem</div><p class="text">(.*?)</p>', visible, re.S)
    assert not any("\\frac" in p for p in problems), "formulas in the shown problems are drawn, not raw"
