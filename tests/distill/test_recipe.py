"""`distillery run RECIPE.yaml`: the steps chain (corpus -> curate -> base -> students -> merge -> eval),
the merge plan's model names resolve to the run's students, and every step is resumable: a rerun
skips what is done, a changed setting redoes that step and what depends on it, a run killed midway
resumes at the first unfinished step."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from distill.recipe import Recipe, RecipeError, Run, run_recipe
from distill.recipe.steps import evaluate as evaluate_step
from distill.recipe.steps import merge as merge_step

# A recipe small enough for CI: two domains (no code sandbox), a 2-layer model, a few steps each.
TINY_SFT = {
    "lr": 3.0e-3,
    "max_steps": 6,
    "seq_len": 512,
    "batch_tokens": 2048,
    "grad_accum": 1,
    "bf16": False,
    "gradient_checkpointing": False,
    "save_every": 0,
    "warmup_ratio": 0.1,
}
TINY = {
    "name": "tiny",
    "threads": 1,
    "corpus": {
        "seed": 5,
        "math": 40,
        "code": 0,
        "science": 24,
        "eval_math": 6,
        "eval_code": 0,
        "eval_science": 6,
        "defect_rate": 0.05,
    },
    "inputs": ["{out}/corpus/traces.jsonl"],
    "curate": {
        "workers": 1,
        "stages": {
            "decontaminate": {
                "benchmarks": ["{out}/corpus/eval/math.jsonl", "{out}/corpus/eval/science.jsonl"]
            }
        },
    },
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
    "sft": {"defaults": TINY_SFT, "domains": {"science": {"max_steps": 4}}},
    "joint": {"max_steps": 5},
    "merge": {
        "merge_method": "task_arithmetic",
        "base_model": "base",
        "dtype": "float32",
        "models": [
            {"model": "students/math", "parameters": {"weight": 1.0}},
            {"model": "students/science", "parameters": {"weight": 1.0}},
        ],
    },
    "eval": {
        "benches": ["math={out}/corpus/eval/math.jsonl", "science={out}/corpus/eval/science.jsonl"],
        "sampling": {"n": 1, "temperature": 0, "max_tokens": 24},
        "limit": 3,
        "workers": 1,
    },
}
MODELS = ["base", "math", "science", "merged", "joint"]


def write_recipe(path: Path, changes: dict | None = None) -> Path:
    values = {**TINY, **(changes or {})}
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return path


def run_logged(recipe, out, **kwargs) -> tuple[dict, list[str]]:
    lines: list[str] = []
    results = run_recipe(recipe, out, progress=False, log=lines.append, **kwargs)
    return results, lines


def ran(lines: list[str]) -> set[str]:
    """The steps a run executed (not skipped), from its per-step lines."""
    return {line.split("] ", 1)[1].split(":", 1)[0] for line in lines if "done earlier" not in line}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("recipe")
    recipe = write_recipe(root / "tiny.yaml")
    results, lines = run_logged(recipe, root / "out")
    return recipe, root / "out", results, lines


def test_every_step_runs_and_the_table_has_models_by_domains(first_run):
    _, out, results, lines = first_run
    assert ran(lines) == {
        "corpus",
        "curate",
        "base",
        "students/math",
        "students/science",
        "merge",
        "joint",
        *(f"eval/{m}" for m in MODELS),
    }
    assert list(results["eval"]) == MODELS
    for scores in results["eval"].values():
        assert set(scores) == {"math", "science"}
        assert all(0.0 <= v <= 1.0 for v in scores.values())
    assert (out / "results.json").is_file()
    for label in MODELS:
        assert (Path(results["models"][label]) / "config.json").is_file()
    # Students train from the tiny base on their own domain's shards only.
    assert (
        results["steps"]["students/math"]["steps"] == 6 and results["steps"]["students/science"]["steps"] == 4
    )
    math_rows = sum(1 for _ in (out / "corpus" / "traces.jsonl").open())
    assert results["steps"]["students/math"]["samples"] < math_rows


def load_weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return {
        name: tensor
        for file in sorted(folder.glob("*.safetensors"))
        for name, tensor in load_file(file).items()
    }


def test_merge_plan_names_resolve_to_the_runs_students(first_run):
    import torch

    _, out, results, _ = first_run
    weights = {
        label: load_weights(Path(results["models"][label])) for label in ("base", "math", "science", "merged")
    }
    for name, base in weights["base"].items():
        expected = base + (weights["math"][name] - base) + (weights["science"][name] - base)
        torch.testing.assert_close(weights["merged"][name], expected, rtol=1e-5, atol=1e-6)
    assert not torch.equal(
        weights["math"]["model.embed_tokens.weight"], weights["base"]["model.embed_tokens.weight"]
    )


def test_rerun_skips_every_step_and_gives_the_same_table(first_run):
    recipe, out, results, _ = first_run
    stamp = (out / "merge.yaml").stat().st_mtime_ns
    again, lines = run_logged(recipe, out)
    assert ran(lines) == set()
    assert again["eval"] == results["eval"]
    assert again["steps_executed"] == [] and len(results["steps_executed"]) == len(results["step_seconds"])
    assert again["step_seconds"] == results["step_seconds"]  # the timings of the run that did the work
    assert (out / "merge.yaml").stat().st_mtime_ns == stamp


def test_changed_setting_redoes_that_step_and_its_dependents(first_run, tmp_path):
    import shutil

    _, out, results, _ = first_run
    copy = tmp_path / "out"
    shutil.copytree(out, copy, symlinks=True)
    sft = {"defaults": TINY_SFT, "domains": {"science": {"max_steps": 5}}}
    recipe = write_recipe(tmp_path / "tiny.yaml", {"sft": sft})
    again, lines = run_logged(recipe, copy)
    assert ran(lines) == {"students/science", "merge", "eval/science", "eval/merged"}
    assert again["steps"]["students/science"]["steps"] == 5
    assert again["eval"]["math"] == results["eval"]["math"]


def test_killed_run_resumes_at_the_first_unfinished_step(first_run, tmp_path, monkeypatch):
    recipe, _, results, _ = first_run
    out = tmp_path / "out"
    calls = []
    original = evaluate_step.run

    def dies_on_the_third(recipe, model, folder, progress):
        calls.append(model)
        if len(calls) == 3:
            raise KeyboardInterrupt  # what Ctrl-C does in the middle of a step
        return original(recipe, model, folder, progress)

    monkeypatch.setattr(evaluate_step, "run", dies_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        run_logged(recipe, out)
    monkeypatch.setattr(evaluate_step, "run", original)
    again, lines = run_logged(recipe, out)
    # Two evaluations had finished; the third and later ones are all that is left.
    assert ran(lines) == {"eval/science", "eval/merged", "eval/joint"}
    assert again["eval"] == results["eval"]  # training is deterministic: the same table as an unbroken run


def test_from_redoes_a_step_group_and_what_follows(first_run, tmp_path):
    import shutil

    recipe, out, _, _ = first_run
    copy = tmp_path / "out"
    shutil.copytree(out, copy, symlinks=True)
    _, lines = run_logged(recipe, copy, start="merge")
    assert ran(lines) == {"merge", *(f"eval/{m}" for m in MODELS)}
    with pytest.raises(RecipeError, match="no such step"):
        run_logged(recipe, copy, start="nope")


def test_parallel_training_gives_the_same_models_as_one_at_a_time(first_run, tmp_path):
    import shutil

    from safetensors.torch import load_file

    recipe, out, results, _ = first_run
    copy = tmp_path / "out"
    shutil.copytree(out, copy, symlinks=True)
    for folder in ("students", "joint", "merged"):
        shutil.rmtree(copy / folder)
    again, lines = run_logged(write_recipe(tmp_path / "tiny.yaml", {"parallel": 2}), copy)
    # `parallel` is a scheduling setting: every step stays done, so nothing but training and merging reruns.
    assert ran(lines) == {"students/math", "students/science", "joint", "merge"}
    for model in ("students/math", "students/science", "joint"):
        mine, theirs = (
            load_file(str(copy / model / "model.safetensors")),
            load_file(str(out / model / "model.safetensors")),
        )
        assert all((mine[k] == theirs[k]).all() for k in theirs), model
    assert again["eval"] == results["eval"]


def test_base_pretrains_on_a_share_of_each_domain(tmp_path):
    import polars as pl

    from distill.recipe.steps.training import link_mixed

    shards = tmp_path / "shards"
    for domain, n in (("math", 40), ("code", 10)):
        (shards / domain).mkdir(parents=True)
        pl.DataFrame({"id": [f"{domain}-{i}" for i in range(n)]}).write_parquet(
            shards / domain / "train-00000.parquet"
        )
        pl.DataFrame({"id": [f"{domain}-val"]}).write_parquet(shards / domain / "val-00000.parquet")
    mixed = link_mixed(shards, tmp_path / "mixed", {"math": 0.5, "code": 0.5}, ["math", "code"])
    rows = {f.name: pl.read_parquet(f)["id"].to_list() for f in mixed.glob("*.parquet")}
    assert len(rows["train-math-00000.parquet"]) == 20 and len(rows["train-code-00000.parquet"]) == 5
    assert set(rows["train-math-00000.parquet"]) < {f"math-{i}" for i in range(40)}
    assert rows["val-math-00000.parquet"] == ["math-val"]  # validation rows are not sampled
    everything = link_mixed(shards, tmp_path / "all", {"math": 1.0, "code": 1.0}, ["math", "code"])
    assert len(pl.read_parquet(everything / "train-math-00000.parquet")) == 40
    # A student's replay: its own rows and validation, and the same sample of the others' rows as the base's.
    student = link_mixed(shards, tmp_path / "student", {"code": 1.0, "math": 0.5}, ["code"])
    assert sorted(f.name for f in student.glob("*.parquet")) == [
        "train-code-00000.parquet",
        "train-math-00000.parquet",
        "val-code-00000.parquet",
    ]
    assert pl.read_parquet(student / "train-math-00000.parquet").equals(
        pl.read_parquet(mixed / "train-math-00000.parquet")
    )


def test_replay_retrains_only_the_students_on_their_domain_and_a_share_of_the_others(first_run, tmp_path):
    import shutil

    _, out, results, _ = first_run
    copy = tmp_path / "out"
    shutil.copytree(out, copy, symlinks=True)
    sft = {**TINY["sft"], "replay": 0.5}
    again, lines = run_logged(write_recipe(tmp_path / "tiny.yaml", {"sft": sft}), copy)
    assert ran(lines) == {
        "students/math",
        "students/science",
        "merge",
        "eval/math",
        "eval/science",
        "eval/merged",
    }
    files = sorted(f.name for f in (copy / "student_data" / "science").glob("*.parquet"))
    assert [f for f in files if not f.startswith("train-science")] == [
        "train-math-00000.parquet",
        "val-science-00000.parquet",
    ]
    before, after = results["steps"]["students/math"]["samples"], again["steps"]["students/math"]["samples"]
    assert after > before


def test_a_replaying_student_draws_its_domains_by_ddk_weights_logged_with_the_losses(first_run, tmp_path):
    import json
    import shutil

    from distill.sft.ddk import ddk_weights

    _, out, _, _ = first_run
    copy = tmp_path / "out"
    shutil.copytree(out, copy, symlinks=True)
    mix = {"reweight": "ddk", "every": 2, "alpha": 0.5}
    sft = {**TINY["sft"], "replay": 0.5, "domains": {"math": {"mix": mix}, "science": {"max_steps": 4}}}
    changes = {"sft": sft, "merge": None, "joint": None, "eval": None}
    _, lines = run_logged(write_recipe(tmp_path / "tiny.yaml", changes), copy)
    assert ran(lines) == {"students/math", "students/science"}
    # The DDK student's folder has every domain's val rows (what DDK measures); the other, its own only.
    assert sorted(f.name for f in (copy / "student_data" / "math").glob("val-*")) == [
        "val-math-00000.parquet",
        "val-science-00000.parquet",
    ]
    assert [f.name for f in (copy / "student_data" / "science").glob("val-*")] == [
        "val-science-00000.parquet"
    ]
    records = [
        r
        for r in map(json.loads, (copy / "students" / "math" / "metrics.jsonl").read_text().splitlines())
        if "ddk_weight/math" in r
    ]
    assert [r["step"] for r in records] == [1, 3, 5]
    names = ["math", "science"]
    # No reference model: the fallback is the base the student starts from, measured before step 1.
    reference = [records[0][f"ddk_loss/{n}"] for n in names]
    previous = [0.5, 0.5]
    for record in records:
        assert [record[f"ddk_reference_loss/{n}"] for n in names] == reference
        losses = [record[f"ddk_loss/{n}"] for n in names]
        weights = [record[f"ddk_weight/{n}"] for n in names]
        assert weights == pytest.approx(list(ddk_weights(losses, reference, previous, 0.5)))
        previous = weights
    # After the first interval (uniform before it) the domain it improved least on gets more rows.
    second = records[1]
    ratios = {n: second[f"ddk_loss/{n}"] / second[f"ddk_reference_loss/{n}"] for n in names}
    assert all(r < 1 for r in ratios.values())  # it learned both, from its own rows and the replay
    lagging, leading = max(names, key=ratios.get), min(names, key=ratios.get)
    assert second[f"ddk_weight/{lagging}"] > 0.5 > second[f"ddk_weight/{leading}"]
    assert records[-1]["ddk_weight/math"] != pytest.approx(0.5)
    assert 'data-weights="students/math"' in (copy / "report" / "index.html").read_text()  # plotted
    # Without replay a student trains on one domain: mix is refused when the recipe is planned.
    alone = {**TINY["sft"], "domains": {"math": {"mix": mix}}}
    with pytest.raises(RecipeError, match="without sft.replay"):
        Run(Recipe.load(write_recipe(tmp_path / "alone.yaml", {"sft": alone}), tmp_path / "alone"))


def test_cli_prints_the_models_by_domains_table(first_run, capsys):
    from distill.cli import main

    recipe, out, results, _ = first_run
    assert main(["run", str(recipe), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    header = next(line for line in printed.splitlines() if line.startswith("model"))
    assert header.split() == ["model", "math", "science"]
    assert [
        line.split()[0] for line in printed.splitlines() if line.split() and line.split()[0] in MODELS
    ] == MODELS


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"steps": 3}, "unknown recipe key"),
        ({"base": {"size": 3}}, "needs `path`"),
        ({"merge": {"merge_method": "linear", "models": [{"model": "students/code"}]}}, "students/code"),
        ({"sft": {"defaults": {"learning_rate": 1}}}, "unknown SFT setting"),
        ({"base": {**TINY["base"], "pretrain": TINY_SFT, "pretrain_share": 1.5}}, "pretrain_share"),
        ({"sft": {**TINY["sft"], "replay": -0.1}}, "sft.replay"),
        ({"sft": {**TINY["sft"], "repaly": 0.3}}, "unknown sft key"),
    ],
)
def test_bad_recipes_fail_before_any_work(tmp_path, changes, message):
    recipe = write_recipe(tmp_path / "bad.yaml", changes)
    with pytest.raises(Exception, match=message) as error:
        Run(Recipe.load(recipe, tmp_path / "out"))
    assert getattr(error.value, "user_error", False)
    assert not (tmp_path / "out").exists()


def test_tinyr1_recipe_plans_the_papers_students_and_merge_order(tmp_path):
    recipe = Path(__file__).resolve().parents[2] / "recipes" / "tinyr1.yaml"
    values = yaml.safe_load(recipe.read_text())
    assert len(values["inputs"]) == 3
    values["inputs"] = [
        str(tmp_path / "traces.jsonl")
    ]  # the user's trace files (planning reads their checksums)
    (tmp_path / "traces.jsonl").write_text("{}\n")
    run = Run(Recipe(values, tmp_path / "out", recipe.parent))
    assert [s.name for s in run.steps] == [
        "curate",
        "base",
        "students/math",
        "students/code",
        "students/science",
        "merge",
        *(f"eval/{m}" for m in ("base", "math", "code", "science", "merged")),
    ]
    settings = {d: run.recipe.student_settings(d) for d in ("math", "code", "science")}
    assert {d: s["epochs"] for d, s in settings.items()} == {"math": 5, "code": 15, "science": 5}
    assert all(s["lr"] == 1e-5 and s["seq_len"] == 16384 for s in settings.values())
    steps = merge_step.plan(run.recipe)["steps"]
    assert [s["merge_method"] for s in steps] == ["arcee_fusion", "arcee_fusion"]
    assert steps[0]["models"][1]["model"] == str(tmp_path / "out" / "students" / "math")
    assert steps[1]["models"][1]["model"] == "math_into_science"  # a step's name stays a step reference


def test_generate_step_feeds_curate_and_a_killed_one_reuses_its_cache(tiny_model, tmp_path, monkeypatch):
    import json

    import distill.generate.runner as runner

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        "".join(json.dumps({"problem": f"What is {a} + {a}?", "answer": str(2 * a)}) + "\n" for a in range(3))
    )
    values = {key: value for key, value in TINY.items() if key not in ("corpus", "inputs")}
    # A random tiny teacher answers nothing right: keep its traces past verification and quality (curate stops
    # when a stage keeps no row), this test is about the steps' chaining.
    values["curate"] = {"workers": 1, "stages": {s: {"enabled": False} for s in ("verify", "quality")}}
    values["generate"] = {
        "teacher": str(tiny_model),
        "prompts": [str(prompts)],
        "sampling": {"n": 2, "temperature": 0.8, "max_tokens": 12},
    }
    run = Run(Recipe.load(values, tmp_path / "out"))
    generate, curate = run.steps[:2]
    assert (generate.name, curate.name) == ("generate", "curate")

    def killed(rows, path):
        raise KeyboardInterrupt  # every request answered, the traces file not yet written

    with monkeypatch.context() as patch:
        patch.setattr(runner, "write_jsonl", killed)
        with pytest.raises(KeyboardInterrupt):
            generate.execute()
    assert not generate.done()
    generate.execute()
    assert generate.summary["cached"] == 6 and generate.summary["generated"] == 0  # nothing paid twice
    rows = [json.loads(line) for line in (tmp_path / "out" / "generated" / "traces.jsonl").open()]
    assert len(rows) == 6 and {r["teacher"] for r in rows} == {str(tiny_model)}
    curate.execute()
    assert curate.summary["rows_in"] == 6  # curate read what the teacher wrote
