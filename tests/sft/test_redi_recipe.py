"""The recipe step `redi/<domain>`: after a student's SFT, its workspace's pairs train it with
`objective: redi` (lr a tenth of the student's unless `redi.defaults` says otherwise)."""

from __future__ import annotations

import json

import pytest

from distill.recipe import Recipe, RecipeError, Run, run_recipe
from tests.conftest import write_jsonl
from tests.curate.test_preferences import PROBLEMS, small_traces

TINY_SFT = {
    "lr": 3.0e-3,
    "max_steps": 4,
    "seq_len": 512,
    "batch_tokens": 2048,
    "grad_accum": 1,
    "bf16": False,
    "gradient_checkpointing": False,
    "save_every": 0,
    "report_to": [],
}


def recipe(traces, **changes) -> dict:
    values = {
        "name": "redi",
        "threads": 1,
        "inputs": [str(traces)],
        "curate": {"workers": 1},
        "domains": ["math"],
        "base": {
            "tiny": {
                "vocab_size": 300,
                "hidden_size": 32,
                "num_layers": 1,
                "num_heads": 2,
                "num_kv_heads": 1,
                "intermediate_size": 64,
                "max_positions": 512,
            }
        },
        "sft": {"defaults": TINY_SFT},
        "redi": {"pairs": {"negatives_per_problem": 2}, "defaults": {"max_steps": 3}},
    }
    values.update(changes)
    return values


def test_redi_step_trains_the_student_on_its_pairs(tmp_path):
    traces = write_jsonl(tmp_path / "traces.jsonl", small_traces())
    out = tmp_path / "out"
    lines: list[str] = []
    results = run_recipe(recipe(traces), out, progress=False, log=lines.append)
    assert results["models"]["math-redi"] == str(out / "redi" / "math")
    summary = results["steps"]["redi/math"]
    val_problems = 1  # the shard stage's val share of 6 problems
    assert summary["pairs"] == 2 * (PROBLEMS - val_problems) and summary["steps"] == 3
    trained = json.loads((out / "redi" / "math" / "summary.json").read_text())["config"]
    assert trained["objective"] == "redi" and trained["alpha"] == 0.8
    assert trained["lr"] == pytest.approx(0.1 * TINY_SFT["lr"])
    metrics = (out / "redi" / "math" / "metrics.jsonl").read_text().splitlines()
    assert all("margin" in json.loads(line) for line in metrics[:3])
    assert (out / "redi" / "math" / "model.safetensors").is_file()
    # The student it started from is the SFT step's, which ran before it.
    order = [line.split("] ", 1)[1].split(":", 1)[0] for line in lines]
    assert order.index("students/math") < order.index("redi/math")


def test_redi_section_is_checked_when_planned(tmp_path):
    traces = write_jsonl(tmp_path / "traces.jsonl", small_traces())
    with pytest.raises(RecipeError, match="redi.domains"):
        Run(Recipe.load(recipe(traces, redi={"domains": ["code"]}), tmp_path / "o"))
    with pytest.raises(RecipeError, match="redi.pairs"):
        Run(Recipe.load(recipe(traces, redi={"pairs": {"negatives": 2}}), tmp_path / "o"))
    with pytest.raises(RecipeError, match="redi"):
        Run(Recipe.load(recipe(traces, redi={"lr": 1e-6}), tmp_path / "o"))
    plain = Run(Recipe.load(recipe(traces, redi=None), tmp_path / "o"))  # redi: null turns it off
    assert not any(s.name.startswith("redi/") for s in plain.steps)
