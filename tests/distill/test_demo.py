"""`distillery demo`, shortened: the built-in recipe end to end with tiny sizes, through the CLI.

It checks what the demo promises: the curation table scores every planted defect type against the
corpus's truth, the evaluation table has the base, one student per domain and the merged model as
rows (and the joint-SFT baseline) and the domains as columns, and the claim table is computed from that evaluation table.
"""

from __future__ import annotations

import json

import pytest
import yaml

from distill.demo.corpus import DEFECTS
from distill.demo.run import claim, deep_update, demo_recipe, verdict

SHORT = {
    "corpus": {
        "math": 40,
        "code": 24,
        "science": 20,
        "eval_math": 5,
        "eval_code": 4,
        "eval_science": 4,
        "val_math": 5,
        "val_code": 4,
        "val_science": 4,
        "defect_rate": 0.05,
    },
    "base": {
        "tiny": {"vocab_size": 400, "hidden_size": 32, "intermediate_size": 64},
        "pretrain": {"epochs": 1, "max_steps": 4},
    },
    "sft": {"defaults": {"max_steps": 5}},
    "joint": {"max_steps": 5},
    "merge": {"search": {"budget": 2}},
    "eval": {"sampling": {"max_tokens": 32}},
}
MODELS = ["base", "math", "code", "science", "merged", "merge_search", "joint"]


def test_short_demo_prints_both_tables_and_writes_results(tmp_path, capsys):
    from distill.cli import main

    root = tmp_path
    recipe = root / "short.yaml"
    recipe.write_text(yaml.safe_dump(demo_recipe(SHORT), sort_keys=False))
    assert main(["demo", "--recipe", str(recipe), "--out", str(root / "out"), "--quiet"]) == 0
    printed = capsys.readouterr().out
    results = json.loads((root / "out" / "results.json").read_text())

    assert set(results["curation"]) == set(DEFECTS)
    for defect, scores in results["curation"].items():
        assert scores["planted"] > 0
        assert scores["recall"] == 1.0 and scores["precision"] == 1.0, (defect, scores)
    assert list(results["eval"]) == MODELS
    for scores in results["eval"].values():
        assert set(scores) == {"math", "code", "science"}
    assert results["claim"] == claim(results["eval"], ["math", "code", "science"])
    # the searched merge (on the corpus's validation sets) is scored on the test sets next to the fixed one
    assert results["claim_search"] == claim(results["eval"], ["math", "code", "science"], "merge_search")
    assert results["steps"]["merge_search"]["evaluations"] == 4 + 2

    lines = printed.splitlines()
    for defect in DEFECTS:  # the curation table
        assert any(line.split()[:1] == [defect] for line in lines if line.strip())
    start = next(i for i, line in enumerate(lines) if line.startswith("model"))  # the evaluation table
    assert lines[start].split() == ["model", "code", "math", "science"]
    table = lines[start + 2 : lines.index("", start)]
    assert [line.split()[0] for line in table] == MODELS
    assert verdict(results["claim"]) in lines  # says whether the claim holds
    assert any(line.startswith("merge search: 6 evaluations on the validation sets (5/4/4") for line in lines)
    # The variants: the DDK joint baseline beside the uniform one, verified-only against unverified data.
    assert set(results["variants"]["runs"]) == {"ddk", "verified", "unverified"}
    joint = next(
        i for i, line in enumerate(lines) if line.split()[:4] == ["domain", "base", "student", "gain"]
    )
    assert "uniform keeps" in lines[joint] and "ddk keeps" in lines[joint]
    assert [line.split()[0] for line in lines[joint + 2 : joint + 5]] == ["math", "code", "science"]
    assert any(line.startswith("ddk weights (") for line in lines)
    assert any(line.startswith("verified only against unverified data, math student:") for line in lines)
    assert "results.json" in lines[-1]


def test_claim_reports_gains_and_the_share_the_merge_keeps():
    table = {
        "base": {"math": 0.1, "code": 0.2},
        "math": {"math": 0.5, "code": 0.1},
        "code": {"math": 0.1, "code": 0.2},
        "merged": {"math": 0.4, "code": 0.3},
    }
    report = claim(table, ["math", "code"])
    assert report["math"]["student_gain"] == pytest.approx(0.4)
    assert report["math"]["kept"] == pytest.approx(0.75)
    assert report["code"]["kept"] is None  # no gain to keep
    assert report["code"]["merged_gain"] == pytest.approx(0.1)
    assert verdict(report) == (
        "claim does not hold: 1/2 students gain on their own domain; the merge keeps more than half of 1 of "
        "those 1 gains (math 75%)"
    )
    table["code"]["code"], table["merged"]["code"] = 0.4, 0.35
    assert verdict(claim(table, ["math", "code"])).startswith("claim holds: 2/2 students gain")
    table["merged"]["code"] = 0.25
    assert verdict(claim(table, ["math", "code"])).startswith("claim does not hold: 2/2 students gain")
    table["merge_search"] = {"math": 0.5, "code": 0.38}
    line = verdict(claim(table, ["math", "code"], "merge_search"), "the searched merge")
    assert line.startswith("claim holds: 2/2") and "the searched merge keeps more than half of 2" in line


def test_overrides_merge_into_the_recipe_key_by_key():
    recipe = demo_recipe({"corpus": {"math": 7}, "sft": {"defaults": {"max_steps": 2}}})
    assert recipe["corpus"]["math"] == 7 and recipe["corpus"]["code"] == demo_recipe()["corpus"]["code"]
    assert recipe["sft"]["defaults"]["max_steps"] == 2 and "lr" in recipe["sft"]["defaults"]
    assert deep_update({"a": {"b": 1}}, {"a": 2}) == {"a": 2}
