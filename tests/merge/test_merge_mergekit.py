"""Equivalence with mergekit (the `bench` extra): the same YAML, merged by both, tensor by tensor."""

from __future__ import annotations

import pytest
import torch

from merge import run_config

pytest.importorskip("mergekit")

TOLERANCE = 1e-5


def _mergekit(config: dict, out, **options) -> None:
    from mergekit.config import MergeConfiguration
    from mergekit.merge import MergeOptions, run_merge

    run_merge(MergeConfiguration.model_validate(config), str(out), MergeOptions(quiet=True, **options))


def _configs(zoo) -> dict[str, dict]:
    def model(name, **parameters):
        return {"model": str(zoo[name]), **({"parameters": parameters} if parameters else {})}

    base = str(zoo["base"])
    return {
        "linear": {
            "merge_method": "linear",
            "models": [model("s0", weight=0.5), model("s1", weight=0.3), model("s2", weight=0.2)],
        },
        "linear_raw": {
            "merge_method": "linear",
            "parameters": {"normalize": False},
            "models": [model("s0", weight=0.5), model("s1", weight=0.7)],
        },
        "task_arithmetic": {
            "merge_method": "task_arithmetic",
            "base_model": base,
            "parameters": {"lambda": 0.8},
            "models": [model("s0", weight=0.5), model("s1", weight=0.3), model("s2", weight=0.2)],
        },
        "ties": {
            "merge_method": "ties",
            "base_model": base,
            "parameters": {"density": [{"filter": "mlp", "value": 0.3}, {"value": 0.6}], "weight": 0.4},
            "models": [model("s0", weight=0.5, density=0.5), model("s1"), model("s2", density=0.9)],
        },
        "slerp": {
            "merge_method": "slerp",
            "base_model": str(zoo["s0"]),
            "parameters": {
                "t": [
                    {"filter": "self_attn", "value": [0, 0.5, 1]},
                    {"filter": "mlp", "value": [1, 0.3]},
                    {"value": 0.4},
                ]
            },
            "models": [model("s0"), model("s1")],
        },
        "model_stock": {
            "merge_method": "model_stock",
            "base_model": base,
            "models": [model("s0"), model("s1"), model("s2")],
        },
        "model_stock_filter_wise": {
            "merge_method": "model_stock",
            "base_model": base,
            "parameters": {"filter_wise": True},
            "models": [model("s0"), model("s1"), model("s2")],
        },
        "arcee_fusion": {
            "merge_method": "arcee_fusion",
            "base_model": str(zoo["s0"]),
            "models": [model("s0"), model("s1")],
        },
    }


CASES = [
    "linear",
    "linear_raw",
    "task_arithmetic",
    "ties",
    "slerp",
    "model_stock",
    "model_stock_filter_wise",
    "arcee_fusion",
]


@pytest.mark.parametrize("case", CASES)
def test_same_tensors_as_mergekit(case, zoo, tiny, write_config, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = {**_configs(zoo)[case], "dtype": "float32"}
    _mergekit(config, tmp_path / "mergekit")
    run_config(write_config(config), tmp_path / "ours")
    theirs, ours = tiny.load(tmp_path / "mergekit"), tiny.load(tmp_path / "ours")
    assert set(theirs) == set(ours)
    assert all(theirs[name].dtype == ours[name].dtype for name in ours)
    worst = max((theirs[name] - ours[name]).abs().max().item() for name in ours)
    print(f"{case}: max |diff| vs mergekit = {worst:.3g}")
    assert worst <= TOLERANCE
    changed = max((ours[name] - tiny.load(zoo["s0"])[name]).abs().max().item() for name in ours)
    assert changed > 1e-3  # the merge did something


@pytest.mark.parametrize("method", ["linear", "ties"])
def test_tied_models_agree_and_stay_tied(method, zoo, tiny, write_config, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = {
        "merge_method": method,
        "base_model": str(zoo["tbase"]),
        "dtype": "float32",
        "models": [
            {"model": str(zoo["t0"]), "parameters": {"weight": 0.6, "density": 0.5}},
            {"model": str(zoo["t1"]), "parameters": {"weight": 0.4, "density": 0.5}},
        ],
    }
    if method == "linear":
        config.pop("base_model")
    _mergekit(config, tmp_path / "mergekit")
    run_config(write_config(config), tmp_path / "ours")
    theirs, ours = tiny.load(tmp_path / "mergekit"), tiny.load(tmp_path / "ours")
    assert "lm_head.weight" not in ours and set(theirs) == set(ours)  # still tied, as the config says
    for name in ours:
        assert (theirs[name] - ours[name]).abs().max().item() <= TOLERANCE


@pytest.mark.parametrize("method", ["dare_ties", "dare_linear"])
def test_dare_matches_mergekit_in_distribution(method, zoo, tiny, write_config, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = {
        "merge_method": method,
        "base_model": str(zoo["base"]),
        "dtype": "float32",
        "seed": 3,
        "models": [
            {"model": str(zoo[f"s{i}"]), "parameters": {"weight": w, "density": d}}
            for i, (w, d) in enumerate([(0.5, 0.5), (0.3, 0.7), (0.2, 0.3)])
        ],
    }
    _mergekit({k: v for k, v in config.items() if k != "seed"}, tmp_path / "mergekit", random_seed=3)
    run_config(write_config(config), tmp_path / "ours")
    base = tiny.load(zoo["base"])
    theirs, ours = tiny.load(tmp_path / "mergekit"), tiny.load(tmp_path / "ours")
    delta_theirs = torch.cat([(theirs[n] - base[n]).flatten() for n in base])
    delta_ours = torch.cat([(ours[n] - base[n]).flatten() for n in base])
    # An entry is unchanged only where every model dropped it: 1 - 0.5 * 0.3 * 0.7 of them change.
    for delta in (delta_theirs, delta_ours):
        assert abs((delta != 0).float().mean().item() - (1 - 0.5 * 0.3 * 0.7)) < 0.01
    assert delta_ours.abs().mean().item() == pytest.approx(delta_theirs.abs().mean().item(), rel=0.03)
    assert delta_ours.std().item() == pytest.approx(delta_theirs.std().item(), rel=0.03)
    assert not torch.equal(delta_ours, delta_theirs)  # different generators: equal only in distribution
