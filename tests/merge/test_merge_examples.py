"""mergekit's example configs (examples/ in arcee-ai/mergekit), run as they are written.

tests/merge/examples/ holds one YAML per example with the same structure (methods, parameters,
gradients, filters, slices, dtypes), only scaled to tiny 5-layer Llama models and with "{a}"-style
placeholders where the example names hub models. Each runs as written (16-bit dtypes included);
with dtype float32 it must agree with mergekit tensor by tensor.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from merge import run_config

EXAMPLES = Path(__file__).parent / "examples"
NAMES = sorted(path.stem for path in EXAMPLES.glob("*.yaml"))


@pytest.fixture(scope="module")
def family(tmp_path_factory, tiny) -> dict[str, str]:
    """A 5-layer Llama base and three students of it."""
    root = tmp_path_factory.mktemp("examples")
    base = tiny.build(root / "base", 40, llama=True, num_hidden_layers=5)
    for index, name in enumerate("abc"):
        tiny.build(root / name, 41 + index, base, llama=True, num_hidden_layers=5)
    return {name: str(root / name) for name in ("base", "a", "b", "c")}


def _config(name: str, family: dict[str, str], **overrides) -> dict:
    text = (EXAMPLES / f"{name}.yaml").read_text()
    for key, path in family.items():
        text = text.replace("{" + key + "}", path)
    return {**yaml.safe_load(text), **overrides}


def _write(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_every_mergekit_example_has_a_copy():
    assert NAMES == [
        "arcee_fusion",
        "bio-merge",
        "gradient-slerp",
        "linear",
        "orcamini-platy-44layer",
        "ties",
    ]


@pytest.mark.parametrize("name", NAMES)
def test_example_runs_as_written(name, family, tiny, tmp_path):
    config = _config(name, family)
    (result,) = run_config(_write(tmp_path / "merge.yaml", config), tmp_path / "out")
    merged = tiny.load(tmp_path / "out")
    dtype = {"bfloat16": "torch.bfloat16", "float16": "torch.float16"}[config["dtype"]]
    assert all(str(t.dtype) == dtype for t in merged.values())
    layers = {int(n.split(".")[2]) for n in merged if n.startswith("model.layers.")}
    assert len(layers) == (6 if name == "orcamini-platy-44layer" else 5)  # 3 + 3 stacked layers
    assert result.tensors == len(merged)


@pytest.mark.parametrize("name", NAMES)
def test_example_agrees_with_mergekit_in_float32(name, family, tiny, tmp_path, monkeypatch):
    pytest.importorskip("mergekit")
    from mergekit.config import MergeConfiguration
    from mergekit.merge import MergeOptions, run_merge

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = _config(name, family, dtype="float32")
    run_merge(MergeConfiguration.model_validate(config), str(tmp_path / "mergekit"), MergeOptions(quiet=True))
    run_config(_write(tmp_path / "merge.yaml", config), tmp_path / "ours")
    theirs, ours = tiny.load(tmp_path / "mergekit"), tiny.load(tmp_path / "ours")
    assert set(theirs) == set(ours)
    worst = max((theirs[n] - ours[n]).abs().max().item() for n in ours)
    print(f"example {name}: max |diff| vs mergekit in float32 = {worst:.3g}")
    assert worst <= 1e-5


def test_stacked_qwen2_restacks_its_per_layer_config_and_loads(zoo, tiny, tmp_path):
    # transformers 5 writes a layer_types list for Qwen2; stacking must rebuild it (mergekit's output
    # config fails transformers' validation here), so the frankenmerge loads and runs.
    from transformers import AutoModelForCausalLM

    config = {
        "merge_method": "passthrough",
        "slices": [
            {"sources": [{"model": str(zoo["s0"]), "layer_range": [0, 2]}]},
            {"sources": [{"model": str(zoo["s1"]), "layer_range": [1, 2]}]},
            {"sources": [{"model": str(zoo["s1"]), "layer_range": [0, 2]}]},
        ],
    }
    run_config(_write(tmp_path / "merge.yaml", config), tmp_path / "out")
    merged, s0, s1 = tiny.load(tmp_path / "out"), tiny.load(zoo["s0"]), tiny.load(zoo["s1"])
    layer = "model.layers.{}.mlp.down_proj.weight"
    for out_layer, (source, source_layer) in enumerate([(s0, 0), (s0, 1), (s1, 1), (s1, 0), (s1, 1)]):
        assert (merged[layer.format(out_layer)] == source[layer.format(source_layer)]).all()
    assert (
        merged["model.embed_tokens.weight"] == s0["model.embed_tokens.weight"]
    ).all()  # from the first slice
    assert (merged["lm_head.weight"] == s1["lm_head.weight"]).all()  # from the last
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    assert model.config.num_hidden_layers == 5 and len(model.config.layer_types) == 5
    assert model(torch.tensor([[1, 2, 3]])).logits.shape == (1, 3, 96)


def test_slices_that_do_not_fit_their_models_are_refused_before_merging(zoo, tmp_path):
    from merge import MergeError, check_config

    too_far = {
        "merge_method": "passthrough",
        "slices": [{"sources": [{"model": str(zoo["s0"]), "layer_range": [1, 4]}]}],
    }
    with pytest.raises(
        MergeError, match=r"has 2 layers, so layer_range \[1, 4\] reaches past its last layer"
    ):
        check_config(_write(tmp_path / "far.yaml", too_far), tmp_path / "out")
    no_base = {
        "merge_method": "ties",
        "base_model": str(zoo["base"]),
        "slices": [
            {
                "sources": [
                    {"model": str(zoo["s0"]), "layer_range": [0, 2]},
                    {"model": str(zoo["s1"]), "layer_range": [0, 2]},
                ]
            }
        ],
    }
    with pytest.raises(MergeError, match="needs its base_model .* among the slice's sources"):
        check_config(_write(tmp_path / "base.yaml", no_base), tmp_path / "out")
    assert not (tmp_path / "out").exists()
