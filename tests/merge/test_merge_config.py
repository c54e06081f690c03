"""mergekit-style YAML: what is accepted, how parameters resolve, and what is refused (with where)."""

from __future__ import annotations

import logging

import pytest

from merge.config import evaluate, gradient, load_config, parse_config, resolve
from merge.errors import MergeError


def test_plain_mergekit_config_parses(write_config):
    path = write_config(
        {
            "merge_method": "ties",
            "base_model": "base",
            "models": [{"model": "a", "parameters": {"weight": 0.6, "density": 0.5}}, {"model": "b"}],
            "parameters": {"normalize": True, "int8_mask": True},
            "dtype": "bf16",
            "out_dtype": "float16",
            "tokenizer_source": "base",
        }
    )
    (step,) = load_config(path)
    assert step.method == "ties" and step.base_model == "base"
    assert [m.ref for m in step.models] == ["a", "b"]
    assert (step.dtype, step.out_dtype, step.tokenizer_source) == ("bfloat16", "float16", "base")
    # Per-model settings come before the global ones.
    assert step.model_layers("a")[0] == {"weight": 0.6, "density": 0.5}
    assert step.model_layers("a")[1]["normalize"] is True


def test_steps_name_and_chain(write_config):
    path = write_config(
        {
            "steps": [
                {"name": "one", "merge_method": "linear", "models": [{"model": "a"}, {"model": "b"}]},
                {
                    "name": "two",
                    "merge_method": "arcee_fusion",
                    "base_model": "c",
                    "models": [{"model": "c"}, {"model": "one"}],
                },
            ]
        }
    )
    steps = load_config(path)
    assert [s.name for s in steps] == ["one", "two"]
    assert steps[1].models[1].ref == "one"
    assert "step 'two'" in steps[1].where


def test_slices_parse_with_their_own_parameters(write_config):
    path = write_config(
        {
            "merge_method": "slerp",
            "base_model": "a",
            "slices": [
                {
                    "sources": [{"model": "a", "layer_range": [0, 2]}, {"model": "b", "layer_range": [0, 2]}],
                    "parameters": {"t": 0.3},
                }
            ],
            "parameters": {"t": 0.9},
        }
    )
    (step,) = load_config(path)
    assert [m.ref for m in step.models] == ["a", "b"]
    (piece,) = step.slices
    assert [(s.ref, s.start, s.end) for s in piece.sources] == [
        ("a", 0, 2),
        ("b", 0, 2),
    ] and piece.length == 2
    # The slice's value wins over the global one.
    assert resolve("t", [piece.parameters, *step.parameters], "x", 0.0, 0.5) == 0.3


def test_stacked_slices_list_each_model_once(write_config):
    path = write_config(
        {
            "merge_method": "passthrough",
            "slices": [
                {"sources": [{"model": "a", "layer_range": [0, 3]}]},
                {"sources": [{"model": "b", "layer_range": [1, 4]}]},
                {"sources": [{"model": "a", "layer_range": [2, 3]}]},
            ],
        }
    )
    (step,) = load_config(path)
    assert [m.ref for m in step.models] == ["a", "b"]
    assert [(p.sources[0].ref, p.sources[0].start, p.length) for p in step.slices] == [
        ("a", 0, 3),
        ("b", 1, 3),
        ("a", 2, 1),
    ]


@pytest.mark.parametrize(
    "config, message",
    [
        ({"models": [{"model": "a"}]}, "merge_method is required"),
        ({"merge_method": "linear"}, "models: is required"),
        ({"merge_method": "linear", "models": [{"model": "a"}, {"model": "a"}]}, "listed twice"),
        ({"merge_method": "linear", "models": [{"path": "a"}]}, "each model needs model:"),
        ({"merge_method": "linear", "models": [{"model": "a"}], "dtype": "int8"}, "dtype 'int8'"),
        (
            {"merge_method": "linear", "models": [{"model": "a"}], "parameters": {"weight": {"filter": "x"}}},
            "needs a value",
        ),
        ({"merge_method": "linear", "modules": {}, "models": [{"model": "a"}]}, "modules"),
        (
            {
                "merge_method": "slerp",
                "slices": [
                    {
                        "sources": [
                            {"model": "a", "layer_range": [0, 2]},
                            {"model": "b", "layer_range": [0, 3]},
                        ]
                    }
                ],
            },
            "same number of layers",
        ),
        (
            {"merge_method": "passthrough", "slices": [{"sources": [{"model": "a", "layer_range": [2, 2]}]}]},
            "layer_range must be",
        ),
        (
            {
                "merge_method": "passthrough",
                "slices": [{"sources": [{"model": "a", "layer_range": [0, 2]}], "residual_weight": 0.5}],
            },
            "residual_weight",
        ),
        ({"steps": [{"merge_method": "linear", "models": [{"model": "a"}]}]}, "needs a name"),
    ],
)
def test_bad_configs_are_refused_with_a_reason(write_config, config, message):
    with pytest.raises(MergeError, match=message):
        load_config(write_config(config))


def test_errors_name_the_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("merge_method: linear\nmodels:\n  - model: a\n  - model: a\n")
    with pytest.raises(MergeError) as error:
        load_config(path)
    assert f"{path}:4" in str(error.value)


def test_unknown_keys_warn_with_a_suggestion(write_config, caplog):
    with caplog.at_level(logging.WARNING, logger="merge"):
        load_config(write_config({"merge_method": "linear", "models": [{"model": "a"}], "base_modle": "x"}))
    assert "did you mean 'base_model'" in caplog.text


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(MergeError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("merge_method: [linear\n")
    with pytest.raises(MergeError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")
    with pytest.raises(MergeError, match="must be a mapping"):
        parse_config(["merge_method"])


def test_gradient_interpolates_like_mergekit():
    assert gradient([0.0, 1.0], 0.25) == 0.25
    assert gradient([0, 0.5, 0.3, 0.7, 1], 0.5) == 0.3
    assert gradient([0, 0.5, 0.3, 0.7, 1], 0.625) == pytest.approx(0.5)  # halfway between 0.3 and 0.7
    assert gradient([1.0, 2.0], 1.0) == 2.0
    assert gradient(["1e-3", 1], 0.0) == 0.001  # YAML reads 1e-3 as a string


def test_filters_pick_the_first_match():
    setting = [{"filter": "self_attn", "value": [0.0, 1.0]}, {"filter": "mlp", "value": 0.2}, {"value": 0.9}]
    assert evaluate(setting, "model.layers.1.self_attn.q_proj.weight", 0.5) == 0.5
    assert evaluate(setting, "model.layers.1.mlp.up_proj.weight", 0.5) == 0.2
    assert evaluate(setting, "model.norm.weight", 0.5) == 0.9
    assert evaluate([{"filter": "mlp", "value": 1}], "model.norm.weight", 0.0) is None


def test_resolve_falls_back_through_layers_and_coerces():
    layers = [{"weight": [{"filter": "mlp", "value": 2}]}, {"weight": 0.5, "normalize": "false"}]
    assert resolve("weight", layers, "layers.0.mlp.w", 0.0, 1.0) == 2.0
    assert resolve("weight", layers, "layers.0.attn.w", 0.0, 1.0) == 0.5  # filter missed: global value
    assert resolve("normalize", layers, "x", 0.0, True) is False
    assert resolve("lambda", layers, "x", 0.0, 1.0) == 1.0
    with pytest.raises(MergeError, match="must be a number"):
        resolve("weight", [{"weight": "heavy"}], "x", 0.0, 1.0)
