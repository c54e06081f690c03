"""Recipe `variants:` (each variant trained and evaluated once the recipe's base is made, reusing
every step they share, one comparison table) and the code hash in recipe step fingerprints."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from distill.recipe import Recipe, RecipeError, Run, run_recipe

SFT = {
    "lr": 3.0e-3,
    "max_steps": 4,
    "seq_len": 512,
    "batch_tokens": 2048,
    "grad_accum": 1,
    "bf16": False,
    "gradient_checkpointing": False,
    "save_every": 0,
}
RECIPE = {
    "name": "variants",
    "threads": 1,
    "corpus": {
        "seed": 3,
        "math": 40,
        "code": 0,
        "science": 24,
        "eval_math": 4,
        "eval_code": 0,
        "eval_science": 4,
        "defect_rate": 0.1,
    },
    "inputs": ["{out}/corpus/traces.jsonl"],
    "curate": {"workers": 1, "stages": {"quality": {"require_final_answer": True}}},
    "domains": ["math", "science"],
    "base": {
        "tiny": {
            "vocab_size": 400,
            "hidden_size": 32,
            "num_layers": 2,
            "num_heads": 2,
            "num_kv_heads": 1,
            "intermediate_size": 64,
            "max_positions": 512,
        }
    },
    "sft": {"defaults": SFT},
    "joint": {"max_steps": 4},
    "merge": {
        "merge_method": "linear",
        "base_model": "base",
        "dtype": "float32",
        "models": [
            {"model": "students/math", "parameters": {"weight": 0.5}},
            {"model": "students/science", "parameters": {"weight": 0.5}},
        ],
    },
    "eval": {
        "benches": ["math={out}/corpus/eval/math.jsonl", "science={out}/corpus/eval/science.jsonl"],
        "sampling": {"n": 1, "temperature": 0, "max_tokens": 16},
        "limit": 2,
        "workers": 1,
    },
}
VARIANTS = {
    # the joint baseline with DDK weights: only it and its eval are the variant's own
    "ddk": {"joint": {"mix": {"reweight": "ddk", "every": 2}}},
    # the planted wrong answers kept, the math student alone, from the recipe's own base
    "unverified": {
        "curate": {"stages": {"verify": {"keep": ["pass", "fail"]}}},
        "domains": ["math"],
        "base": {"path": "{main}/base/init"},
        "merge": None,
        "joint": None,
    },
}


def executed(lines: list[str]) -> list[str]:
    """The steps a run executed, in order; a variant's own steps as `variant:step`."""
    found = []
    for line in lines:
        if "] " not in line or "done earlier" in line:
            continue
        words = line.split("] ", 1)[1].split(":", 1)[0].split()
        found.append(":".join(words))
    return found


@pytest.mark.slow
def test_two_variants_run_only_their_own_steps_and_share_the_rest(tmp_path, capsys):
    out = tmp_path / "out"
    lines: list[str] = []
    results = run_recipe({**RECIPE, "variants": VARIANTS}, out, progress=False, log=lines.append)
    steps = executed(lines)
    # The recipe's steps ran once each; each variant ran only what it changes.
    assert steps.count("corpus") == 1 and "curate" in steps and "joint" in steps
    assert [s for s in steps if s.startswith("ddk:")] == ["ddk:joint", "ddk:eval/joint"]
    assert [s for s in steps if s.startswith("unverified:")] == [
        "unverified:curate",
        "unverified:base",
        "unverified:students/math",
        "unverified:eval/base",
        "unverified:eval/math",
    ]
    runs = results["variants"]["runs"]
    assert runs["ddk"]["shared"] == [
        "corpus",
        "curate",
        "base",
        "students/math",
        "students/science",
        "merge",
    ] + [f"eval/{m}" for m in ("base", "math", "science", "merged")]
    assert runs["unverified"]["shared"] == ["corpus"]
    ddk = out / "variants" / "ddk"
    assert (ddk / "workspace").is_symlink() and (ddk / "workspace").resolve() == (out / "workspace").resolve()
    metrics = (ddk / "joint" / "metrics.jsonl").read_text().splitlines()
    assert any("ddk_weight/math" in line for line in metrics)

    table = results["variants"]["table"]
    assert [(r["variant"], r["model"]) for r in table] == [
        ("recipe", "base"),
        ("unverified", "base"),
        ("recipe", "math"),
        ("unverified", "math"),
        ("recipe", "joint"),
        ("ddk", "joint"),
    ]
    rows = {(r["variant"], r["model"]): r for r in table}
    # keeping the failed traces trains the math student on more rows, with the same settings
    assert rows["unverified", "math"]["rows"] > rows["recipe", "math"]["rows"]
    assert rows["unverified", "math"]["steps"] == rows["recipe", "math"]["steps"] == 4
    assert rows["recipe", "joint"]["rows"] == rows["ddk", "joint"]["rows"]
    # the recipe's own base, scored again in the variant, scores the same
    assert rows["unverified", "base"]["pass@1"] == rows["recipe", "base"]["pass@1"]
    assert json.loads((out / "results.json").read_text())["variants"]["table"] == table
    # The run report plots the DDK weights over the steps and shows the variants' table.
    html = (out / "report" / "index.html").read_text()
    chart = re.search(r'<figure data-weights="variants/ddk/joint">(.*?)</figure>', html, re.S).group(1)
    assert re.findall(r'<polyline data-domain="([a-z]+)"', chart) == ["math", "science"]
    assert re.findall(r'<tr data-variant="([a-z]+)" data-model="([a-z]+)">', html) == [
        (r["variant"], r["model"]) for r in table
    ]

    # A rerun does nothing again.
    again: list[str] = []
    run_recipe({**RECIPE, "variants": VARIANTS}, out, progress=False, log=again.append)
    assert executed(again) == []


@pytest.mark.parametrize(
    "variants, message",
    [
        ({"a": {"eval": {"limit": 1}}}, r"may not change \['eval'\]"),
        ({"recipe": {}}, "variant name"),
        ({"a": {"domains": ["code"]}}, "not the recipe's"),
        ({"a": {"joint": {"lr": -1}}}, "lr must be > 0"),
        ({"a": {"sft": {"replya": 0.3}}}, "unknown sft key"),
    ],
)
def test_bad_variants_fail_before_any_work(tmp_path, variants, message):
    with pytest.raises(Exception, match=message) as error:
        run_recipe({**RECIPE, "variants": variants}, tmp_path / "out", progress=False, log=lambda _: None)
    assert getattr(error.value, "user_error", False) or isinstance(error.value, RecipeError)
    assert not (tmp_path / "out" / "corpus").exists()


def fingerprints(out: Path) -> dict[str, str]:
    return {s.name: s.fingerprint for s in Run(Recipe.load(RECIPE, out), progress=False).steps}


def test_fingerprints_hold_the_code_of_each_step(tmp_path, monkeypatch):
    """A changed trainer redoes the training steps and what reads them, not the corpus or curation;
    a changed verifier redoes curation and everything after it."""
    import curate.codehash as codehash

    def use_sources(root: Path) -> dict[str, str]:
        monkeypatch.setattr(codehash, "ROOT", root)
        codehash.module_closure.cache_clear()
        codehash.code_hash.cache_clear()
        return fingerprints(tmp_path / "out")

    copy = tmp_path / "src"
    for package in ("curate", "distill", "merge"):
        shutil.copytree(codehash.ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__"))
    before = use_sources(copy)
    assert before == fingerprints(tmp_path / "out")  # the copy hashes as the checkout does

    trainer = copy / "distill" / "sft" / "trainer.py"
    trainer.write_text(trainer.read_text() + "\n# a change\n")
    after = use_sources(copy)
    unchanged = {name for name in before if before[name] == after[name]}
    assert unchanged == {"corpus", "curate"}

    verify = copy / "curate" / "stages" / "verify.py"
    verify.write_text(verify.read_text() + "\n# a change\n")
    assert {n for n, f in use_sources(copy).items() if f == after[n]} == {"corpus"}
