"""domain: content rules, config overrides, per-problem consistency, the learned classifier, the old name."""

from __future__ import annotations

import polars as pl
import pytest

import sql
from curate.classify import HashedNgramClassifier
from curate.errors import CurateError
from curate.pipeline import build_stages, curate
from curate.schema import TRACE_SCHEMA, problem_id
from curate.stages.domain import Domain
from curate.stages.normalize import Normalize
from tests.conftest import shared_file, write_jsonl
from tests.curate.test_quality import run_pipeline

CONTENT_ONLY = {"source_name": 0, "meta_tag": 0}  # judge by content, not by the dataset's name

ROWS = {
    "tests": {"problem": "Read n and print n squared.", "tests": '{"kind": "stdin", "cases": []}'},
    "fence": {
        "problem": "Return the sum of a list.",
        "response": "```python\ndef total(xs):\n    return sum(xs)\n```",
    },
    "boxed": {"problem": "Add two and two.", "response": "Two and two make $\\boxed{4}$."},
    "science": {
        "problem": "Which particle carries a negative charge?\n(A) proton\n(B) electron\n(C) neutron\n(D) photon",
        "response": "The electron. Answer: B",
        "reference": "B",
    },
    "nothing": {"problem": "Write a haiku about autumn leaves.", "response": "Red leaves drift and fall."},
}


def frame(rows: dict[str, dict]) -> pl.DataFrame:
    """Trace rows (source `mixed`), one per entry, `problem_id` from the problem text."""
    records = [
        {
            **{c: None for c in TRACE_SCHEMA.names},
            "row_id": i,
            "source": "mixed",
            "meta": "{}",
            "id": name,
            **row,
        }
        for i, (name, row) in enumerate(rows.items())
    ]
    for record in records:
        record["problem_id"] = problem_id(record["problem"])
    return pl.DataFrame(records, schema=pl.Schema(TRACE_SCHEMA))


def split(rows: dict[str, dict], **options) -> dict[str, dict]:
    out = Domain(per_problem=False, **options).process(frame(rows))
    return {r["id"]: r for r in out.to_dicts()}


def test_content_rules_pick_each_domain():
    result = split(ROWS)
    assert {name: r["domain"] for name, r in result.items()} == {
        "tests": "code",
        "fence": "code",
        "boxed": "math",
        "science": "science",
        "nothing": "other",
    }
    assert result["tests"]["domain_rules"] == "tests"
    assert result["fence"]["domain_rules"] == "code_fence"
    assert result["science"]["domain_rules"] == "mc_science+science_terms"
    assert result["nothing"]["domain_rules"] == "no evidence"
    assert result["nothing"]["domain_confidence"] < 0.5 < result["boxed"]["domain_confidence"]
    assert result["tests"]["domain_confidence"] > result["fence"]["domain_confidence"], (
        "a stronger hint, more sure"
    )
    assert all(r["_reason"] is None for r in result.values())


def test_config_overrides_rules():
    mapped = split(ROWS, sources={"mix*": "science"})
    assert {r["domain"] for r in mapped.values()} == {"science"}, "trusted source metadata outweighs content"
    chat = split(ROWS, sources={"mixed": "other"})["boxed"]
    assert (chat["domain"], chat["domain_rules"]) == ("other", "source_map"), (
        "a source can be declared `other`"
    )
    assert split(ROWS, weights={"boxed": 0})["boxed"]["domain"] == "other"
    custom = split(
        {"titration": {"problem": "Describe a titration endpoint.", "response": "The color changes."}},
        rules=[{"name": "lab", "domain": "science", "pattern": "(?i)titration", "weight": 5}],
    )
    assert (custom["titration"]["domain"], custom["titration"]["domain_rules"]) == ("science", "lab")
    narrower = split(ROWS, science_terms=["haiku", "autumn", "leaves"])
    assert (narrower["nothing"]["domain"], narrower["nothing"]["domain_rules"]) == (
        "science",
        "science_terms",
    )
    assert narrower["science"]["domain"] == "other", "multiple choice alone is not science"
    with pytest.raises(CurateError, match="needs name, domain and pattern"):
        Domain(rules=[{"name": "lab", "domain": "science"}])
    with pytest.raises(CurateError, match="unknown rule"):
        Domain(weights={"boxd": 1})
    with pytest.raises(CurateError, match="unknown domain"):
        Domain(sources={"x": "poetry"})
    with pytest.raises(CurateError, match="method"):
        Domain(method="magic")


def test_keep_domains_and_min_confidence_reject_with_reasons():
    kept_math = split(ROWS, keep_domains=["math", "code"])
    assert kept_math["science"]["_reason"] == "domain_excluded"
    assert kept_math["nothing"]["_reason"] == "domain_excluded"
    assert kept_math["boxed"]["_reason"] is None
    sure = split(ROWS, min_confidence=0.5)
    assert sure["nothing"]["_reason"] == "low_confidence"
    assert sure["tests"]["_reason"] is None


def test_generations_of_one_problem_share_a_domain(tmp_path):
    problem = "Compute two plus two."
    records = [
        {"problem": problem, "response": "```python\nprint(2 + 2)\n```", "source": "mixed"},
        {"problem": problem, "response": "It is $\\boxed{4}$.", "source": "mixed"},
        {"problem": problem, "response": "So $\\boxed{4}$.", "source": "mixed"},
    ]
    ws = run_pipeline(tmp_path / "a", records, [Normalize(), Domain()])
    con = sql.connect(ws.root)
    assert con.execute("SELECT DISTINCT domain FROM kept").fetchall() == [("math",)]
    rules = dict(con.execute("SELECT response, domain_rules FROM kept").fetchall())
    assert rules["```python\nprint(2 + 2)\n```"] == "problem", "decided by its problem's other generations"
    alone = run_pipeline(tmp_path / "b", records, [Normalize(), Domain(per_problem=False)])
    domains = sorted(d for (d,) in sql.connect(alone.root).execute("SELECT domain FROM kept").fetchall())
    assert domains == ["code", "math", "math"]


def test_content_rules_on_the_shared_data(tmp_path):
    """Without the dataset names or meta tags, content alone puts each real source in its domain."""
    files = {
        "math/math500.jsonl": "math",
        "math/qwen_math_cot_100.jsonl": "math",
        "problems/aime_train.jsonl": "math",
        "code/humaneval.jsonl": "code",
        "code/codeforces.jsonl": "code",
    }
    ws = run_pipeline(tmp_path, [str(shared_file(f)) for f in files], [Domain(weights=CONTENT_ONLY)])
    rows = sql.connect(ws.root).execute("SELECT source, domain FROM kept").fetchall()
    expected = {f.split("/")[1].removesuffix(".jsonl"): d for f, d in files.items()}
    right = sum(domain == expected[source] for source, domain in rows)
    assert len(rows) == 2847 and right / len(rows) > 0.995, (
        f"{right}/{len(rows)} rows in their source's domain"
    )


def test_learned_classifier_agrees_with_rules_and_labels_rows_without_hints(tmp_path):
    files = [
        "math/math500.jsonl",
        "code/humaneval.jsonl",
        "code/codeforces.jsonl",
        "problems/math_train.jsonl",
    ]
    inputs = [str(shared_file(f)) for f in files]
    rules_only = run_pipeline(tmp_path / "rules", inputs, [Domain(weights=CONTENT_ONLY)])
    unhinted = {
        row_id
        for (row_id,) in sql.connect(rules_only.root)
        .execute("SELECT row_id FROM kept WHERE source = 'math_train' AND domain = 'other'")
        .fetchall()
    }
    assert unhinted, "some MATH problems carry no LaTeX, no numeric answer and no solution"
    ws = run_pipeline(
        tmp_path / "learned", inputs, [Domain(method="learned", weights=CONTENT_ONLY, learned_max_train=3000)]
    )
    stats = ws.manifest()["stages"][-1]["classifier"]
    print(f"learned split: {stats}")
    assert stats["classes"] == ["code", "math"] and stats["train_rows"] > 1000
    assert stats["holdout_rows"] > 50 and stats["holdout_accuracy_vs_rules"] >= 0.98
    con = sql.connect(ws.root)
    relabelled = dict(con.execute("SELECT row_id, domain FROM kept WHERE source = 'math_train'").fetchall())
    placed = [relabelled[r] for r in unhinted]
    assert "other" not in placed, "the classifier places the rows the rules could not"
    assert placed.count("math") / len(placed) >= 0.6, placed
    wrong = con.execute(
        "SELECT count(*) FROM kept WHERE (source IN ('humaneval', 'codeforces')) <> (domain = 'code')"
    ).fetchone()[0]
    assert wrong == 0


def test_classifier_learns_separable_classes():
    texts = [f"integral of x^{i} dx from 0 to {i}" for i in range(40)] + [
        f"def f{i}(xs): return sorted(xs)[{i}]" for i in range(40)
    ]
    labels = ["math"] * 40 + ["code"] * 40
    model = HashedNgramClassifier(["code", "math"], dim=1 << 12).fit(texts, labels)
    assert model.predict(["integral of x^7 dx", "def g(xs): return sorted(xs)"]) == ["math", "code"]
    probs = model.predict_proba(["integral of x^7 dx"])
    assert probs.shape == (1, 2) and abs(probs.sum() - 1) < 1e-9 and probs[0, 1] > 0.9


def test_the_former_name_split_still_configures_the_domain_stage(tmp_path):
    row = {
        "problem": "Compute $\\frac{1}{2} + 1$.",
        "response": "It is $\\boxed{\\frac{3}{2}}$.",
        "answer": "3/2",
    }
    data = write_jsonl(tmp_path / "rows.jsonl", [row])
    stages = build_stages([str(data)], {"stages": {"split": {"min_confidence": 0.2}}}, until="split")
    assert [s.name for s in stages][-1] == "domain"
    assert stages[-1].options["min_confidence"] == 0.2
    with pytest.raises(CurateError, match="its former name"):
        build_stages([str(data)], {"stages": {"split": {}, "domain": {}}})
    with pytest.raises(CurateError, match="unknown stage.*dommain"):
        build_stages([str(data)], {"stages": {"dommain": {}}})
    curate([str(data)], tmp_path / "ws", progress=False)
    con = sql.connect(tmp_path / "ws")
    assert con.execute("SELECT domain FROM stage_split").fetchall() == [("math",)]  # the old view name
    assert "domain" in {s for (s,) in con.execute("SELECT stage FROM funnel").fetchall()}
