"""decontaminate: n-gram overlap with benchmark files, drop or flag, evidence in the contamination view."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import sql
from curate.errors import CurateError
from curate.readers import resolve_inputs
from curate.stage import run_stages, stage_fingerprint
from curate.stages.decontaminate import Decontaminate
from curate.stages.ingest import Ingest
from curate.stages.normalize import Normalize
from curate.text import WORD_PATTERN, normalize_text
from curate.workspace import Workspace
from tests.conftest import shared_file, write_jsonl

BENCH_ITEM = (
    "Triangle $ABC$ has vertices at $(0,0)$, $(4,0)$ and $(0,3)$. A point $P$ is chosen uniformly at random "
    "inside the triangle. What is the probability that $P$ is closer to $A$ than to $B$?"
)


def words(text: str) -> str:
    """The normalised words of a text, space-separated and padded (for whole-word `in` checks)."""
    return " " + " ".join(re.findall(WORD_PATTERN, normalize_text(text))) + " "


def run(tmp_path: Path, inputs: list[str], stage: Decontaminate):
    ws = Workspace.open(tmp_path / "ws", create=True)
    results = run_stages(ws, [Ingest(resolve_inputs(inputs)), Normalize(), stage], progress=False)
    return sql.connect(ws.root), results[-1]


def bench_file(tmp_path: Path, problems: list[str]) -> str:
    records = [{"id": f"item-{i}", "problem": p, "answer": "1"} for i, p in enumerate(problems)]
    return str(write_jsonl(tmp_path / "tiny_bench.jsonl", records))


def train_file(tmp_path: Path, problems: list[str]) -> str:
    return str(write_jsonl(tmp_path / "train.jsonl", [{"problem": p} for p in problems]))


def test_math500_items_found_in_math_train_with_evidence(tmp_path):
    math_train = shared_file("problems/math_train.jsonl")
    math500 = shared_file("math/math500.jsonl")
    con, info = run(tmp_path, [str(math_train)], Decontaminate(benchmarks=[str(math500)]))
    hits = con.execute(
        "SELECT row_id, benchmark, benchmark_item, matched_ngram, overlap FROM contamination"
    ).fetchall()
    found = {(row_id, item) for row_id, _, item, _, _ in hits}
    # known MATH train/test pairs (row_id = line - 1 of math_train.jsonl)
    for pair in [
        (5535, "test/number_theory/466.json"),
        (3304, "test/geometry/702.json"),
        (2629, "test/geometry/283.json"),
        (1253, "test/geometry/283.json"),
    ]:
        assert pair in found
    lines = math_train.read_text().splitlines()
    items = {
        json.loads(line)["unique_id"]: json.loads(line)["problem"]
        for line in math500.read_text().splitlines()
    }
    for row_id, benchmark, item, ngram, overlap in hits:
        assert benchmark == "math500" and overlap >= 0.5
        assert len(ngram.split()) == 8
        ngram = f" {ngram} "
        assert ngram in words(json.loads(lines[row_id])["problem"])
        assert ngram in words(items[item])
    rejected = dict(con.execute("SELECT row_id, reason FROM rejected").fetchall())
    assert set(rejected) == {row_id for row_id, *_ in hits} and set(rejected.values()) == {"contaminated"}
    assert info["by_reason"] == {"contaminated": len(rejected)}
    assert len(rejected) < 100  # boilerplate 8-grams ("where m and n are relatively prime") are not evidence


def test_perturbed_copy_is_caught_and_flag_mode_keeps_it(tmp_path):
    copy = "Problem: " + BENCH_ITEM.replace("uniformly at random", "uniformly  at random").upper()
    unrelated = "Compute the sum of the first ten positive odd integers and express it as a perfect square."
    bench = bench_file(tmp_path, [BENCH_ITEM])
    train = train_file(tmp_path, [copy, unrelated])
    con, _ = run(tmp_path / "drop", [train], Decontaminate(benchmarks=[bench]))
    assert con.execute("SELECT row_id, reason FROM rejected").fetchall() == [(0, "contaminated")]
    assert con.execute("SELECT benchmark, benchmark_item FROM contamination").fetchall() == [
        ("tiny_bench", "item-0")
    ]

    con, _ = run(tmp_path / "flag", [train], Decontaminate(benchmarks=[bench], mode="flag"))
    assert con.execute("SELECT count(*) FROM rejected").fetchone()[0] == 0
    flags = dict(con.execute("SELECT row_id, contaminated_by FROM kept").fetchall())
    assert flags == {0: "tiny_bench:item-0", 1: None}
    assert con.execute("SELECT dropped FROM contamination").fetchall() == [(False,)]


def test_short_problems_match_whole(tmp_path):
    bench = bench_file(tmp_path, ["Compute $\\dbinom{8}{4}$.", BENCH_ITEM])
    train = train_file(
        tmp_path,
        [
            "compute $\\binom{8}{4}$",  # the same short item
            # contains the item but is more than it
            "Compute $\\dbinom{8}{4}$ and then add the number of edges of a cube to it.",
            "Compute $\\dbinom{9}{4}$.",
        ],
    )
    con, _ = run(tmp_path, [train], Decontaminate(benchmarks=[bench]))
    assert con.execute("SELECT row_id, benchmark_item FROM contamination").fetchall() == [(0, "item-0")]


def test_ngram_size_and_overlap_threshold(tmp_path):
    item = (
        "A farmer has seventeen sheep and all but nine run away through a broken gate in the fence near the "
        "old barn during a storm. How many sheep does the farmer have left after the storm has passed?"
    )
    half = " ".join(item.split()[:12]) + " and what is the total length of that fence if it is square?"
    bench = bench_file(tmp_path, [item])
    train = train_file(tmp_path, [half])
    contaminated = {}
    for n, overlap in [(8, 0.0), (8, 0.5), (13, 0.0)]:
        con, _ = run(
            tmp_path / f"{n}-{overlap}",
            [train],
            Decontaminate(benchmarks=[bench], ngram=n, min_overlap=overlap),
        )
        contaminated[(n, overlap)] = con.execute("SELECT count(*) FROM contamination").fetchone()[0]
    # 12 shared words: some 8-grams, no 13-gram; too small a share of the text for min_overlap 0.5
    assert contaminated == {(8, 0.0): 1, (8, 0.5): 0, (13, 0.0): 0}


def test_no_benchmark_is_a_noop_that_says_so(tmp_path, capsys):
    con, info = run(tmp_path, [train_file(tmp_path, [BENCH_ITEM])], Decontaminate())
    assert con.execute("SELECT count(*) FROM kept").fetchone()[0] == 1
    assert "no benchmark" in info["note"]
    assert "no benchmark" in capsys.readouterr().err


def test_benchmark_content_is_fingerprinted(tmp_path):
    bench = bench_file(tmp_path, [BENCH_ITEM])
    before = stage_fingerprint("", Decontaminate(benchmarks=[bench]))
    bench_file(tmp_path, [BENCH_ITEM + " Give the answer as a fraction."])
    assert stage_fingerprint("", Decontaminate(benchmarks=[bench])) != before


def test_bad_configuration(tmp_path):
    with pytest.raises(CurateError, match="does not exist"):
        Decontaminate(benchmarks=[str(tmp_path / "missing.jsonl")])
    with pytest.raises(CurateError, match="mode"):
        Decontaminate(mode="warn")
