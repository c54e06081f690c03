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
    result = fit_coefficients(
        lm, tokenizer, base, [student], [prompts], answer, settings, log=lambda line: losses.append(line)
    )
    assert result.method == "task_arithmetic" and result.scale is None
    (fitted,) = result.weights
    assert set(fitted) == set(base)
    values = list(fitted.values())
    assert sum(values) / len(values) > 0.75  # from 0.5, towards 1
    first, last = (float(line.rsplit(" ", 1)[1]) for line in (losses[0], losses[-1]))
    assert last < first / 2


def test_ties_fit_starts_at_the_ties_merge_and_lowers_the_kl(tiny_model, noisy_student, tmp_path):
    """The ties parametrisation at weight 1 and lambda 1 is the merge library's TIES merge at that
    density; fitted from there (every sequence in each step), the KL to both students falls and the
    result is a weight per student and a lambda per tensor, all positive."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import merge
    from distill.merge_fit import FitSettings, _ties_parts, fit_coefficients

    for index, domain in enumerate(("math", "code")):
        noisy_student(tmp_path / domain, index, 0.3)
    base = load_file(tiny_model / "model.safetensors")
    students = [load_file(tmp_path / d / "model.safetensors") for d in ("math", "code")]
    fixed = merge.merge_state_dicts(
        "ties",
        students,
        base=base,
        parameters={"normalize": True},
        model_parameters=[{"weight": 1.0, "density": 0.4}] * 2,
    )
    for name, tensor in base.items():
        agreeing, agree = _ties_parts(torch.stack([s[name] - tensor for s in students]), 0.4)
        divisor = agree.sum(0)
        assert torch.allclose(tensor + agreeing.sum(0) / (divisor + (divisor == 0)), fixed[name], atol=1e-6)

    lm = AutoModelForCausalLM.from_pretrained(tiny_model)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    prompts = [[f"alpha beta {i} + {i + 1} =" for i in range(4)], [f"write a function {i}" for i in range(4)]]
    losses: list[str] = []

    def answer(index):
        lm.load_state_dict(students[index], strict=False)
        return [f" {2 * i + 1} \\boxed{{{i}}}" for i in range(4)]

    settings = FitSettings(method="ties", density=0.4, steps=20, lr=0.05, batch=4)
    fitted = fit_coefficients(lm, tokenizer, base, students, prompts, answer, settings, log=losses.append)
    assert fitted.method == "ties" and fitted.density == 0.4
    assert set(fitted.scale) == set(base) and all(v >= 0 for v in fitted.scale.values())
    assert all(v > 0 for weights in fitted.weights for v in weights.values())
    first, last = (float(line.rsplit(" ", 1)[1]) for line in (losses[0], losses[-1]))
    assert last < 0.8 * first


@pytest.mark.usefixtures("two_students")
@pytest.mark.parametrize("method", ["task_arithmetic", "ties"])
def test_fit_candidate_is_scored_stored_and_resumed(tiny_model, tmp_path, capsys, method):
    """`fit: {...}` adds one candidate (the first of the budget): a task_arithmetic merge with a weight
    per tensor, or a ties merge with a weight per tensor and a lambda per tensor, written to best.yaml
    as filtered lists that `distillery merge` reads."""
    plan = {
        "base": str(tiny_model),
        "students": {"math": "math", "code": "code"},
        "validation": {"math": "math.jsonl", "code": "code.jsonl"},
        "methods": ["ties"],
        "fit": {"method": method, "steps": 3, "batch": 1},
        "budget": 2,
        "sampling": {"n": 1, "temperature": 0.0, "max_tokens": 4},
        "out": "search",
    }
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(plan))
    main(["merge-search", str(tmp_path / "plan.yaml"), "--quiet"])
    frame = pl.read_parquet(tmp_path / "search" / "candidates.parquet")
    assert frame["label"].to_list()[3:] == [f"fit {method}", "#0 ties"]
    fitted = json.loads(frame["merge"][3])
    assert fitted["method"] == method
    weights = fitted["model_parameters"][0]["weight"]
    assert {w["filter"] for w in weights} >= {"model.embed_tokens.weight", "model.norm.weight"}
    assert "tensors, mean" in frame["parameters"][3]
    if method == "ties":
        assert fitted["parameters"]["normalize"] is True
        assert {w["filter"] for w in fitted["parameters"]["lambda"]} == {w["filter"] for w in weights}
        assert fitted["model_parameters"][0]["density"] == 0.5
    else:
        assert fitted["parameters"] == {"normalize": False}
    capsys.readouterr()
    main(["merge-search", str(tmp_path / "plan.yaml"), "--quiet"])
    assert "0 evaluations run (5 read back)" in capsys.readouterr().out

    import merge
    from distill.merge_search import best_config, load_plan

    row = frame.row(3, named=True)
    (tmp_path / "fit.yaml").write_text(yaml.safe_dump(best_config(load_plan(tmp_path / "plan.yaml"), row)))
    merge.run_config(tmp_path / "fit.yaml", tmp_path / "merged")
    assert list((tmp_path / "merged").glob("*.safetensors"))


def test_bad_fit_settings_are_refused(tmp_path):
    from distill.merge_search import SearchError, load_plan

    path = tmp_path / "plan.yaml"
    path.write_text(
        yaml.safe_dump({"base": "b", "students": {"m": "m"}, "validation": {"m": "v"}, "fit": {"stpes": 3}})
    )
    with pytest.raises(SearchError, match="fit must be true or a mapping"):
        load_plan(path)
    path.write_text(
        yaml.safe_dump(
            {"base": "b", "students": {"m": "m"}, "validation": {"m": "v"}, "fit": {"method": "slerp"}}
        )
    )
    with pytest.raises(SearchError, match="fit method must be task_arithmetic or ties"):
        load_plan(path)
