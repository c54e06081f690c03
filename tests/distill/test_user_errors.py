"""A user mistake ends a distill command with one line naming the path and what to do, exit status
2 (1 for a machine problem such as a full disk), never a traceback: missing files, folders that are
not models, YAML typos, unknown keys, in sft, branch, generate, eval, run and demo."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pytest
import yaml

from distill.cli import main


def one_line_error(capsys, argv: list[str], status: int = 2) -> str:
    """Run `distillery argv`; the error it printed (asserting one line, no traceback)."""
    assert main(argv) == status
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"distillery {argv[0]}: error: ")
    return err


@pytest.fixture
def not_a_model(tmp_path) -> Path:
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"")
    return folder


@pytest.fixture
def no_tokenizer(tmp_path, tiny_model) -> Path:
    """A model folder holding only the model's config.json (its tokenizer files left behind)."""
    folder = tmp_path / "config_only"
    folder.mkdir()
    shutil.copy(tiny_model / "config.json", folder / "config.json")
    return folder


@pytest.fixture
def bad_yaml(tmp_path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text("lr: 1e-4\n  epochs: 3\n")
    return path


def test_sft_with_a_base_that_does_not_exist(capsys, tmp_path):
    missing = tmp_path / "no_such_model"
    err = one_line_error(
        capsys, ["sft", "--base", str(missing), "--data", str(tmp_path), "--out", str(tmp_path / "o")]
    )
    assert (
        str(missing) in err
        and "no such base model folder" in err
        and "local Hugging Face model folder" in err
    )
    assert not (tmp_path / "o").exists()  # refused before anything was written


def test_sft_with_a_folder_that_is_not_a_model(capsys, tmp_path, not_a_model):
    err = one_line_error(
        capsys, ["sft", "--base", str(not_a_model), "--data", str(tmp_path), "--out", str(tmp_path / "o")]
    )
    assert f"{not_a_model}: not a base model folder (no config.json)" in err


def test_sft_with_a_model_folder_without_its_tokenizer(capsys, tmp_path, no_tokenizer):
    err = one_line_error(
        capsys, ["sft", "--base", str(no_tokenizer), "--data", str(tmp_path), "--out", str(tmp_path / "o")]
    )
    assert f"{no_tokenizer}: no tokenizer files" in err and "tokenizer.save_pretrained" in err


def test_sft_with_missing_data_and_with_a_bad_config(capsys, tmp_path, tiny_model, bad_yaml):
    err = one_line_error(
        capsys,
        ["sft", "--base", str(tiny_model), "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")],
    )
    assert str(tmp_path / "nope") in err
    argv = ["sft", "--base", str(tiny_model), "--data", str(tmp_path), "--out", str(tmp_path / "o")]
    err = one_line_error(capsys, [*argv, "--config", str(bad_yaml)])
    assert f"{bad_yaml}: the SFT config is not valid YAML at line 2" in err
    err = one_line_error(capsys, [*argv, "--config", str(tmp_path)])
    assert f"{tmp_path}: a folder, not a SFT config file" in err


def test_branch_with_a_folder_that_is_not_a_workspace(capsys, tmp_path, tiny_model):
    err = one_line_error(
        capsys, ["branch", str(tmp_path), "--base", str(tiny_model), "--out", str(tmp_path / "o")]
    )
    assert str(tmp_path) in err and "distillery curate" in err


def test_generate_and_eval_with_a_model_that_does_not_exist(capsys, tmp_path, not_a_model):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"problem": "What is 1 + 1?", "answer": "2"}) + "\n")
    missing = tmp_path / "no_such_model"
    err = one_line_error(
        capsys,
        [
            "generate",
            "--teacher",
            str(missing),
            "--prompts",
            str(prompts),
            "--out",
            str(tmp_path / "g.jsonl"),
            "--backend",
            "hf",
        ],
    )
    assert f"{missing}: no such model folder" in err
    err = one_line_error(capsys, ["eval", str(not_a_model), "--bench", f"math={prompts}", "--backend", "hf"])
    assert f"{not_a_model}: not a model folder (no config.json)" in err


def test_run_and_demo_with_a_recipe_that_is_missing_a_folder_or_bad_yaml(capsys, tmp_path, bad_yaml):
    missing = tmp_path / "nope.yaml"
    assert f"{missing}: no such recipe file" in one_line_error(capsys, ["run", str(missing)])
    assert f"{tmp_path}: a folder, not a recipe file" in one_line_error(capsys, ["run", str(tmp_path)])
    assert f"{bad_yaml}: the recipe is not valid YAML at line 2" in one_line_error(
        capsys, ["run", str(bad_yaml)]
    )
    err = one_line_error(capsys, ["demo", "--out", str(tmp_path / "d"), "--recipe", str(missing)])
    assert f"{missing}: no such recipe file" in err


def write(path: Path, values: dict) -> Path:
    path.write_text(yaml.safe_dump(values))
    return path


RECIPE = {
    "inputs": ["traces.jsonl"],
    "domains": ["math"],
    "merge": {"merge_method": "linear", "models": [{"model": "students/math"}]},
}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"eval": {"benches": ["math=traces.jsonl"], "samplng": {}}}, "unknown eval key(s) ['samplng']"),
        (
            {"eval": {"benches": ["math=traces.jsonl"], "sampling": {"temp": 0}}},
            "unknown eval.sampling key(s) ['temp']",
        ),
        ({"corpus": {"maths": 3}}, "unknown corpus key(s) ['maths']"),
        ({"base": {"tiny": {}, "pretrain_shares": 0.3}}, "unknown base key(s) ['pretrain_shares']"),
        ({"merge": "no_such_merge.yaml"}, "no_such_merge.yaml: no such merge plan file"),
        ({"domains": "math"}, "`domains` must be a list"),
    ],
)
def test_run_refuses_recipe_mistakes_before_any_work(capsys, tmp_path, changes, message):
    (tmp_path / "traces.jsonl").write_text("{}\n")
    recipe = write(tmp_path / "r.yaml", {**RECIPE, "base": {"path": "model"}, **changes})
    assert message in one_line_error(capsys, ["run", str(recipe), "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_run_checks_the_base_model_and_benches_before_the_first_step(capsys, tmp_path, tiny_model):
    (tmp_path / "traces.jsonl").write_text("{}\n")
    recipe = write(tmp_path / "r.yaml", {**RECIPE, "base": {"path": "no_such_model"}})
    err = one_line_error(capsys, ["run", str(recipe), "--out", str(tmp_path / "out")])
    assert f"{tmp_path / 'no_such_model'}: no such base model folder" in err
    eval_spec = {"benches": ["math=no_such_bench.jsonl"]}
    recipe = write(tmp_path / "r.yaml", {**RECIPE, "base": {"path": str(tiny_model)}, "eval": eval_spec})
    err = one_line_error(capsys, ["run", str(recipe), "--out", str(tmp_path / "out")])
    assert "no_such_bench.jsonl" in err and "no such file" in err
    assert not (tmp_path / "out" / "workspace").exists()  # curation never started


def test_a_full_disk_is_one_line_and_a_bug_keeps_its_traceback(capsys, monkeypatch, tmp_path):
    import distill.recipe.plan as plan

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out" / "part-0.parquet"))

    monkeypatch.setattr(plan, "run_recipe", disk_full)
    err = one_line_error(capsys, ["run", "r.yaml"], status=1)
    assert (
        f"{tmp_path / 'out' / 'part-0.parquet'}: No space left on device; free some space, then rerun" in err
    )

    def bug(*args, **kwargs):
        raise OSError(errno.EBADF, "Bad file descriptor")

    monkeypatch.setattr(plan, "run_recipe", bug)
    with pytest.raises(OSError):
        main(["run", "r.yaml"])
