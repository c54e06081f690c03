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


def _new_method_configs(zoo) -> dict[str, dict]:
    """The methods and slice layouts added for issue 22."""

    def model(name, **parameters):
        return {"model": str(zoo[name]), **({"parameters": parameters} if parameters else {})}

    def source(name, start, end, **parameters):
        return {
            "model": str(zoo[name]),
            "layer_range": [start, end],
            **({"parameters": parameters} if parameters else {}),
        }

    base = str(zoo["base"])
    return {
        "breadcrumbs": {
            "merge_method": "breadcrumbs",
            "base_model": base,
            "parameters": {"lambda": 0.9},
            "models": [
                model("s0", weight=0.5, density=0.6, gamma=0.05),
                model("s1", weight=0.3, density=0.8),
                model("s2", weight=0.2, density=0.5),
            ],
        },
        "breadcrumbs_rescaled": {
            "merge_method": "breadcrumbs",
            "base_model": base,
            "parameters": {"rescale": True, "normalize": True},
            "models": [model("s0", weight=0.6, density=0.4, gamma=0.1), model("s1", weight=0.4, density=0.7)],
        },
        "breadcrumbs_ties": {
            "merge_method": "breadcrumbs_ties",
            "base_model": base,
            "parameters": {"gamma": [{"filter": "mlp", "value": 0.1}, {"value": 0.02}]},
            "models": [
                model("s0", weight=0.5, density=0.5),
                model("s1", weight=0.3, density=0.9),
                model("s2", weight=0.2, density=0.7),
            ],
        },
        "sce": {
            "merge_method": "sce",
            "base_model": base,
            "parameters": {"select_topk": 0.4},
            "models": [model("s0"), model("s1"), model("s2")],
        },
        "sce_all": {"merge_method": "sce", "base_model": base, "models": [model("s0"), model("s1")]},
        "karcher": {"merge_method": "karcher", "models": [model("s0"), model("s1"), model("s2")]},
        "karcher_base": {
            "merge_method": "karcher",
            "base_model": base,
            "parameters": {"max_iter": 3},
            "models": [model("s0"), model("s1")],
        },
        "nuslerp": {
            "merge_method": "nuslerp",
            "base_model": base,
            "models": [model("s0", weight=0.3), model("s1", weight=0.7)],
        },
        "nuslerp_rows": {
            "merge_method": "nuslerp",
            "parameters": {"nuslerp_flatten": False},
            "models": [model("s0", weight=0.6), model("s1", weight=0.4)],
        },
        "nuslerp_columns": {
            "merge_method": "nuslerp",
            "base_model": base,
            "parameters": {"nuslerp_flatten": False, "nuslerp_row_wise": True},
            "models": [model("s0", weight=[0.2, 0.8]), model("s1", weight=0.5)],
        },
        "multislerp": {
            "merge_method": "multislerp",
            "models": [model("s0", weight=0.5), model("s1", weight=0.3), model("s2", weight=0.2)],
        },
        "multislerp_base": {
            "merge_method": "multislerp",
            "base_model": base,
            "parameters": {"normalize_weights": False},
            "models": [model("s0", weight=0.6), model("s1", weight=0.6), model("s2", weight=0.3)],
        },
        "nearswap": {
            "merge_method": "nearswap",
            "base_model": str(zoo["s0"]),
            "parameters": {"t": [0.005, 0.03]},
            "models": [model("s0"), model("s1")],
        },
        # Layer stacking: 3 + 3 + 1 layers from two 4-layer models, one slice scaled.
        "passthrough_stack": {
            "merge_method": "passthrough",
            "slices": [
                {"sources": [source("d0", 0, 3)]},
                {
                    "sources": [source("d1", 1, 4)],
                    "parameters": {"scale": [{"filter": "o_proj", "value": 0.5}, {"value": 1.0}]},
                },
                {"sources": [source("d0", 3, 4)]},
            ],
        },
        "passthrough_cut": {"merge_method": "passthrough", "slices": [{"sources": [source("d1", 1, 3)]}]},
        # Merged slices of different layers, each with its own gradient position.
        "slerp_slices": {
            "merge_method": "slerp",
            "base_model": str(zoo["d0"]),
            "parameters": {"t": [0.0, 1.0]},
            "slices": [
                {"sources": [source("d0", 0, 2), source("d1", 2, 4)]},
                {"sources": [source("d0", 2, 4), source("d1", 0, 2)], "parameters": {"t": 0.3}},
            ],
        },
        "ties_slices": {
            "merge_method": "ties",
            "base_model": str(zoo["dbase"]),
            "slices": [
                {
                    "sources": [
                        source("dbase", 0, 4),
                        source("d0", 0, 4, weight=0.7, density=0.5),
                        source("d1", 0, 4, weight=0.3, density=0.8),
                    ]
                },
            ],
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
    "breadcrumbs",
    "breadcrumbs_rescaled",
    "breadcrumbs_ties",
    "sce",
    "sce_all",
    "karcher",
    "karcher_base",
    "nuslerp",
    "nuslerp_rows",
    "nuslerp_columns",
    "multislerp",
    "multislerp_base",
    "nearswap",
    "passthrough_stack",
    "passthrough_cut",
    "slerp_slices",
    "ties_slices",
]


@pytest.mark.parametrize("case", CASES)
def test_same_tensors_as_mergekit(case, zoo, tiny, write_config, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = {**_configs(zoo), **_new_method_configs(zoo)}[case] | {"dtype": "float32"}
    _mergekit(config, tmp_path / "mergekit")
    run_config(write_config(config), tmp_path / "ours")
    theirs, ours = tiny.load(tmp_path / "mergekit"), tiny.load(tmp_path / "ours")
    assert set(theirs) == set(ours)
    assert all(theirs[name].dtype == ours[name].dtype for name in ours)
    worst = max((theirs[name] - ours[name]).abs().max().item() for name in ours)
    print(f"{case}: max |diff| vs mergekit = {worst:.3g}")
    assert worst <= TOLERANCE
    first = tiny.load(zoo["d0" if "slices" in config else "s0"])
    changed = max((ours[name] - first[name]).abs().max().item() for name in ours if name in first)
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


@pytest.mark.parametrize("method", ["della", "della_linear"])
def test_della_matches_mergekit_in_distribution(method, zoo, tiny, write_config, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    models = [
        {"model": str(zoo[f"s{i}"]), "parameters": {"weight": w, "density": d, "epsilon": e}}
        for i, (w, d, e) in enumerate([(0.5, 0.5, 0.2), (0.3, 0.7, 0.1), (0.2, 0.3, 0.15)])
    ]
    config = {"merge_method": method, "base_model": str(zoo["base"]), "dtype": "float32", "models": models}
    _mergekit(config, tmp_path / "mergekit", random_seed=3)
    run_config(write_config({**config, "seed": 3}), tmp_path / "ours")
    base = tiny.load(zoo["base"])
    theirs, ours = tiny.load(tmp_path / "mergekit"), tiny.load(tmp_path / "ours")
    delta_theirs = torch.cat([(theirs[n] - base[n]).flatten() for n in base])
    delta_ours = torch.cat([(ours[n] - base[n]).flatten() for n in base])
    changed = [(delta != 0).float().mean().item() for delta in (delta_theirs, delta_ours)]
    print(
        f"{method}: changed share mergekit {changed[0]:.4f}, ours {changed[1]:.4f}; mean |delta| "
        f"{delta_theirs.abs().mean().item():.3e} vs {delta_ours.abs().mean().item():.3e}"
    )
    assert abs(changed[0] - changed[1]) < 0.01
    assert delta_ours.abs().mean().item() == pytest.approx(delta_theirs.abs().mean().item(), rel=0.03)
    assert delta_ours.std().item() == pytest.approx(delta_theirs.std().item(), rel=0.03)
    assert not torch.equal(delta_ours, delta_theirs)  # different generators: equal only in distribution
