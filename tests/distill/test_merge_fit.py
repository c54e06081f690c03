"""The merge search's fitted candidate (distill.merge_fit): per-student, per-tensor task-arithmetic
weights fitted to each student's own answers on the validation prompts, then scored like any
other candidate and resumed from the table."""

from __future__ import annotations

import json

import polars as pl
import pytest
import yaml

from distill.cli import main


def test_one_student_is_fitted_back_to_itself(tiny_model, noisy_student, tmp_path):
    """With one student, KL(student || merge) is zero at weight 1 on every tensor: from 0.5 the fit
    moves every coefficient towards 1 and the loss falls."""
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from distill.merge_fit import FitSettings, fit_coefficients

    noisy_student(tmp_path / "math", 0, 0.3)
    base = load_file(tiny_model / "model.safetensors")
    student = load_file(tmp_path / "math" / "model.safetensors")
    lm = AutoModelForCausalLM.from_pretrained(tiny_model)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    prompts = [f"alpha beta {i} + {i + 1} =" for i in range(6)]
    losses: list[float] = []

    def answer(index):
        lm.load_state_dict(student, strict=False)
        return [f" {2 * i + 1} \\boxed{{{i}}}" for i in range(6)]

    settings = FitSettings(steps=30, lr=0.05, batch=4, init=0.5)
    (fitted,) = fit_coefficients(
        lm, tokenizer, base, [student], [prompts], answer, settings, log=lambda line: losses.append(line)
    )
    assert set(fitted) == set(base)
    values = list(fitted.values())
    assert sum(values) / len(values) > 0.75  # from 0.5, towards 1
    first, last = (float(line.rsplit(" ", 1)[1]) for line in (losses[0], losses[-1]))
    assert last < first / 2


@pytest.mark.usefixtures("two_students")
def test_fit_candidate_is_scored_stored_and_resumed(tiny_model, tmp_path, capsys):
    """`fit: {...}` adds one candidate (the first of the budget): a task_arithmetic merge with a weight
    per tensor, written to best.yaml as filtered lists that `distillery merge` reads."""
    plan = {
        "base": str(tiny_model),
        "students": {"math": "math", "code": "code"},
        "validation": {"math": "math.jsonl", "code": "code.jsonl"},
        "methods": ["ties"],
        "fit": {"steps": 3, "batch": 1},
        "budget": 2,
        "sampling": {"n": 1, "temperature": 0.0, "max_tokens": 4},
        "out": "search",
    }
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(plan))
    main(["merge-search", str(tmp_path / "plan.yaml"), "--quiet"])
    frame = pl.read_parquet(tmp_path / "search" / "candidates.parquet")
    assert frame["label"].to_list()[3:] == ["fit task_arithmetic", "#0 ties"]
    fitted = json.loads(frame["merge"][3])
    assert fitted["method"] == "task_arithmetic" and fitted["parameters"] == {"normalize": False}
    weights = fitted["model_parameters"][0]["weight"]
    assert {w["filter"] for w in weights} >= {"model.embed_tokens.weight", "model.norm.weight"}
    assert "tensors, mean" in frame["parameters"][3]
    capsys.readouterr()
    main(["merge-search", str(tmp_path / "plan.yaml"), "--quiet"])
    assert "0 evaluations run (5 read back)" in capsys.readouterr().out

    import merge

    config = {
        "merge_method": "task_arithmetic",
        "base_model": str(tiny_model),
        "models": [
            {"model": str(tmp_path / d), "parameters": p}
            for d, p in zip(("math", "code"), fitted["model_parameters"], strict=True)
        ],
        "parameters": fitted["parameters"],
    }
    (tmp_path / "fit.yaml").write_text(yaml.safe_dump(config))
    merge.run_config(tmp_path / "fit.yaml", tmp_path / "merged")
    assert (tmp_path / "merged" / "model.safetensors.index.json").exists() or list(
        (tmp_path / "merged").glob("*.safetensors")
    )


def test_bad_fit_settings_are_refused(tmp_path):
    from distill.merge_search import SearchError, load_plan

    path = tmp_path / "plan.yaml"
    path.write_text(
        yaml.safe_dump({"base": "b", "students": {"m": "m"}, "validation": {"m": "v"}, "fit": {"stpes": 3}})
    )
    with pytest.raises(SearchError, match="fit must be true or a mapping"):
        load_plan(path)
