"""Merges on disk: checks before work, output files and dtypes, chained steps and the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from distill.cli import main
from merge import MergeError, merge_state_dicts, run_config
from merge.plan import plan_config


def _models(zoo, *names, **parameters):
    return [
        {"model": str(zoo[name]), **({"parameters": parameters[name]} if name in parameters else {})}
        for name in names
    ]


def test_merged_folder_has_weights_config_tokenizer_and_loads_in_transformers(
    zoo, tiny, write_config, tmp_path
):
    from transformers import Qwen2ForCausalLM

    config = write_config(
        {
            "merge_method": "ties",
            "base_model": str(zoo["base"]),
            "models": _models(zoo, "s0", "s1", s0={"weight": 0.7, "density": 0.5}),
            "parameters": {"density": 0.8},
        }
    )
    out = tmp_path / "out"
    (result,) = run_config(config, out, shard_bytes=20_000)
    assert result.tensors == len(tiny.load(zoo["base"]))
    assert len(list(out.glob("model-*-of-*.safetensors"))) > 1
    for name in (
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
        "model.safetensors.index.json",
        "merge_config.yaml",
    ):
        assert (out / name).is_file(), name
    model = Qwen2ForCausalLM.from_pretrained(out)
    merged = tiny.load(out)
    torch.testing.assert_close(model.state_dict()["model.norm.weight"], merged["model.norm.weight"])
    expected = merge_state_dicts(
        "ties",
        [tiny.load(zoo["s0"]), tiny.load(zoo["s1"])],
        base=tiny.load(zoo["base"]),
        parameters={"density": 0.8},
        model_parameters=[{"weight": 0.7, "density": 0.5}, {}],
    )
    assert all(torch.equal(expected[name], merged[name]) for name in expected)


def test_output_dtype_defaults_to_the_inputs_and_follows_out_dtype(zoo, tiny, write_config, tmp_path):
    linear = {"merge_method": "linear", "models": _models(zoo, "s0", "s1")}
    run_config(write_config(linear), tmp_path / "same")
    assert {t.dtype for t in tiny.load(tmp_path / "same").values()} == {torch.float32}

    run_config(write_config({**linear, "out_dtype": "bfloat16"}), tmp_path / "bf16")
    merged = tiny.load(tmp_path / "bf16")
    assert {t.dtype for t in merged.values()} == {torch.bfloat16}
    config = json.loads((tmp_path / "bf16" / "config.json").read_text())
    assert config.get("dtype", config.get("torch_dtype")) == "bfloat16"
    exact = (tiny.load(zoo["s0"])["lm_head.weight"] + tiny.load(zoo["s1"])["lm_head.weight"]) / 2
    torch.testing.assert_close(merged["lm_head.weight"], exact.to(torch.bfloat16))

    # dtype casts the inputs before merging (as mergekit does): the merge of rounded inputs.
    run_config(write_config({**linear, "dtype": "bfloat16", "out_dtype": "float32"}), tmp_path / "cast")
    rounded = (
        tiny.load(zoo["s0"])["lm_head.weight"].bfloat16().float()
        + tiny.load(zoo["s1"])["lm_head.weight"].bfloat16().float()
    ) / 2
    torch.testing.assert_close(tiny.load(tmp_path / "cast")["lm_head.weight"], rounded)


def test_two_step_chain_equals_two_merges_by_hand(zoo, tiny, write_config, tmp_path):
    config = write_config(
        {
            "steps": [
                {
                    "name": "math_science",
                    "merge_method": "arcee_fusion",
                    "base_model": str(zoo["s0"]),
                    "models": _models(zoo, "s0", "s1"),
                },
                {
                    "name": "final",
                    "merge_method": "arcee_fusion",
                    "base_model": str(zoo["s2"]),
                    "models": [{"model": str(zoo["s2"])}, {"model": "math_science"}],
                },
            ]
        }
    )
    out = tmp_path / "out"
    results = run_config(config, out)
    assert [r.out_dir for r in results] == [out / "steps" / "math_science", out]
    first = merge_state_dicts("arcee_fusion", [tiny.load(zoo["s0"]), tiny.load(zoo["s1"])], base=0)
    second = merge_state_dicts("arcee_fusion", [tiny.load(zoo["s2"]), first], base=0)
    merged = tiny.load(out)
    assert all(torch.equal(second[name], merged[name]) for name in second)


def _fails(config_path, out, *fragments):
    with pytest.raises(MergeError) as error:
        run_config(config_path, out)
    for fragment in fragments:
        assert fragment in str(error.value), str(error.value)
    assert not out.exists() or not list(out.glob("*.safetensors"))  # nothing was merged


def test_architecture_mismatch_is_found_before_merging(zoo, tiny, write_config, tmp_path):
    deeper = tmp_path / "deeper"
    tiny.build(deeper, 3, num_hidden_layers=3)
    config = write_config(
        {"merge_method": "linear", "models": [{"model": str(zoo["s0"])}, {"model": str(deeper)}]}
    )
    _fails(config, tmp_path / "out", f"model {deeper}", "num_hidden_layers is 3", "model.layers.2.")


def test_missing_tensor_names_the_model_and_tensor(zoo, tiny, write_config, tmp_path):
    state = tiny.load(zoo["s1"])
    del state["model.layers.1.mlp.up_proj.weight"]
    config_json = json.loads((zoo["s1"] / "config.json").read_text())
    partial = tiny.save_state(tmp_path / "partial", state, config_json)
    config = write_config(
        {"merge_method": "linear", "models": [{"model": str(zoo["s0"])}, {"model": str(partial)}]}
    )
    _fails(
        config, tmp_path / "out", f"model {partial}", "lacks 1 tensor", "model.layers.1.mlp.up_proj.weight"
    )


def test_shape_mismatch_names_the_model_and_tensor(zoo, tiny, write_config, tmp_path):
    state = tiny.load(zoo["s1"])
    state["model.layers.0.self_attn.q_proj.bias"] = torch.zeros(16)
    config_json = json.loads((zoo["s1"] / "config.json").read_text())
    odd = tiny.save_state(tmp_path / "odd", state, config_json)
    config = write_config(
        {"merge_method": "linear", "models": [{"model": str(zoo["s0"])}, {"model": str(odd)}]}
    )
    _fails(
        config, tmp_path / "out", "tensor model.layers.0.self_attn.q_proj.bias", f"model {odd} has shape [16]"
    )


def test_vocabulary_mismatch_needs_a_tokenizer_source_then_pads(zoo, tiny, write_config, tmp_path):
    base = tiny.load(zoo["base"])
    generator = torch.Generator().manual_seed(1)
    bigger = {
        name: torch.cat([t, torch.randn(8, t.shape[1], generator=generator)])
        if t.shape[0] == 96 and t.dim() == 2
        else t
        for name, t in base.items()
    }
    config_json = {**json.loads((zoo["base"] / "config.json").read_text()), "vocab_size": 104}
    wide = tiny.save_state(tmp_path / "wide", bigger, config_json)
    tiny.write_tokenizer(wide, 104)
    models = [{"model": str(zoo["s0"])}, {"model": str(wide)}]
    config = write_config({"merge_method": "linear", "models": models})
    _fails(
        config,
        tmp_path / "out",
        "vocabulary sizes differ",
        f"{zoo['s0']}: 96",
        f"{wide}: 104",
        "tokenizer_source",
    )

    run_config(
        write_config({"merge_method": "linear", "models": models, "tokenizer_source": str(wide)}),
        tmp_path / "padded",
    )
    merged = tiny.load(tmp_path / "padded")
    s0 = tiny.load(zoo["s0"])
    assert merged["model.embed_tokens.weight"].shape == (104, 32)
    torch.testing.assert_close(
        merged["lm_head.weight"][:96], (s0["lm_head.weight"] + bigger["lm_head.weight"][:96]) / 2
    )
    # Rows s0 lacks are taken from the tokenizer's model, so those tokens keep its values.
    torch.testing.assert_close(merged["lm_head.weight"][96:], bigger["lm_head.weight"][96:])
    assert json.loads((tmp_path / "padded" / "config.json").read_text())["vocab_size"] == 104
    assert json.loads((tmp_path / "padded" / "tokenizer.json").read_text())["model"]["vocab"]["tok103"] == 103

    run_config(
        write_config({"merge_method": "linear", "models": models, "tokenizer_source": str(zoo["s0"])}),
        tmp_path / "truncated",
    )
    assert tiny.load(tmp_path / "truncated")["model.embed_tokens.weight"].shape == (96, 32)


def test_tied_and_separate_lm_head_need_untie(zoo, tiny, write_config, tmp_path):
    models = [{"model": str(zoo["t0"])}, {"model": str(zoo["s0"])}]
    _fails(
        write_config({"merge_method": "linear", "models": models}),
        tmp_path / "out",
        f"tied to the input embeddings in {zoo['t0']}",
        f"separate lm_head.weight in {zoo['s0']}",
        "untie_embeddings",
    )

    run_config(
        write_config({"merge_method": "linear", "models": models, "untie_embeddings": True}),
        tmp_path / "untied",
    )
    merged = tiny.load(tmp_path / "untied")
    t0, s0 = tiny.load(zoo["t0"]), tiny.load(zoo["s0"])
    torch.testing.assert_close(
        merged["lm_head.weight"], (t0["model.embed_tokens.weight"] + s0["lm_head.weight"]) / 2
    )
    assert json.loads((tmp_path / "untied" / "config.json").read_text())["tie_word_embeddings"] is False


def test_tied_models_stay_tied(zoo, tiny, write_config, tmp_path):
    run_config(
        write_config({"merge_method": "linear", "models": _models(zoo, "t0", "t1")}), tmp_path / "tied"
    )
    merged = tiny.load(tmp_path / "tied")
    assert "lm_head.weight" not in merged
    assert json.loads((tmp_path / "tied" / "config.json").read_text())["tie_word_embeddings"] is True


def test_method_contract_and_parameters_are_checked_per_tensor(zoo, write_config, tmp_path):
    fusion = {
        "merge_method": "arcee_fusion",
        "base_model": str(zoo["s0"]),
        "models": _models(zoo, "s0", "s1", "s2"),
    }
    _fails(write_config(fusion), tmp_path / "out", "arcee_fusion takes exactly 2 models")
    slerp = {
        "merge_method": "slerp",
        "base_model": str(zoo["s0"]),
        "models": _models(zoo, "s0", "s1"),
        "parameters": {"t": [{"filter": "mlp", "value": 0.5}]},
    }
    _fails(write_config(slerp), tmp_path / "out", "tensor lm_head.weight", "parameter t is required")
    ties = {"merge_method": "ties", "models": _models(zoo, "s0", "s1")}
    _fails(write_config(ties), tmp_path / "out", "ties needs base_model")
    bad_weight = {"merge_method": "linear", "models": _models(zoo, "s0", "s1", s1={"weight": "heavy"})}
    _fails(write_config(bad_weight), tmp_path / "out", "parameter weight must be a number")


def test_missing_model_and_output_over_an_input(zoo, write_config, tmp_path):
    _fails(
        write_config({"merge_method": "linear", "models": [{"model": "Qwen/Qwen2.5-0.5B"}]}),
        tmp_path / "out",
        "'Qwen/Qwen2.5-0.5B' not found",
        "download",
    )
    copy = tmp_path / "copy"
    shutil.copytree(zoo["s0"], copy)
    with pytest.raises(MergeError, match="is an input"):
        plan_config(write_config({"merge_method": "linear", "models": [{"model": str(copy)}]}), copy)


def test_later_steps_are_checked_before_the_first_one_runs(zoo, tiny, write_config, tmp_path):
    deeper = tmp_path / "deeper"
    tiny.build(deeper, 3, num_hidden_layers=3)
    config = write_config(
        {
            "steps": [
                {"name": "one", "merge_method": "linear", "models": _models(zoo, "s0", "s1")},
                {
                    "name": "two",
                    "merge_method": "linear",
                    "models": [{"model": "one"}, {"model": str(deeper)}],
                },
            ]
        }
    )
    with pytest.raises(MergeError, match="step 'two'"):
        run_config(config, tmp_path / "out")
    assert not (tmp_path / "out" / "steps" / "one").exists()


def test_cli_merges_and_prints_a_summary(zoo, write_config, tmp_path, capsys):
    config = write_config(
        {
            "merge_method": "task_arithmetic",
            "base_model": str(zoo["base"]),
            "models": _models(zoo, "s0", "s1"),
            "parameters": {"lambda": 0.5},
        }
    )
    assert main(["merge", str(config), "--out", str(tmp_path / "out"), "--shard-size", "50KB"]) == 0
    captured = capsys.readouterr()
    assert "task_arithmetic" in captured.out and "seconds" in captured.out
    assert "checks passed" in captured.err
    assert len(list((tmp_path / "out").glob("model-*.safetensors"))) > 1

    assert main(["merge", str(config), "--out", str(tmp_path / "checked"), "--check"]) == 0
    assert not (tmp_path / "checked").exists()

    bad = write_config({"merge_method": "nonsense", "models": _models(zoo, "s0")}, name="bad.yaml")
    assert main(["merge", str(bad), "--out", str(tmp_path / "bad")]) == 2
    assert "unknown merge_method 'nonsense'" in capsys.readouterr().err


@pytest.mark.parametrize("recipe", ["tinyr1_two_step.yaml", "ties_three_students.yaml"])
def test_example_recipes_run(recipe, zoo, tiny, tmp_path, monkeypatch):
    recipes = Path(__file__).resolve().parents[2] / "recipes" / "merge"
    (tmp_path / "out" / "sft").mkdir(parents=True)
    for domain, student in (("math", "s0"), ("science", "s1"), ("code", "s2")):
        (tmp_path / "out" / "sft" / domain).symlink_to(zoo[student])
    (tmp_path / "out" / "base").symlink_to(zoo["base"])
    monkeypatch.chdir(tmp_path)
    results = run_config(recipes / recipe, tmp_path / "merged")
    assert results[-1].out_dir == tmp_path / "merged"
    merged = tiny.load(tmp_path / "merged")
    assert {t.dtype for t in merged.values()} == {torch.bfloat16}
    assert set(merged) == set(tiny.load(zoo["base"]))
