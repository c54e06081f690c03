"""The model card (README.md) written with every merge output: by the API, by `distillery merge`
(both go through `merge.api.run_step`), for every step of a chained config."""

from __future__ import annotations

import json
import shutil

import yaml

from distill.cli import main
from merge import run_config


def test_a_merge_writes_a_card_naming_method_parameters_inputs_and_tokenizer(zoo, write_config, tmp_path):
    config = write_config(
        {
            "merge_method": "ties",
            "base_model": str(zoo["base"]),
            "models": [
                {"model": str(zoo["s0"]), "parameters": {"weight": 0.7, "density": 0.5}},
                {"model": str(zoo["s1"]), "parameters": {"weight": 0.3, "density": 0.9}},
            ],
            "parameters": {"normalize": True, "lambda": 0.8},
            "tokenizer_source": "base",
            "dtype": "float32",
        }
    )
    (result,) = run_config(config, tmp_path / "out")
    card = (tmp_path / "out" / "README.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert front["library_name"] == "transformers" and "ties" in front["tags"]
    assert "| method | `ties` |" in card
    assert f"| base model | `{zoo['base']}` |" in card
    assert f"| tokenizer | `{zoo['base']}` (tokenizer_source: base) |" in card
    assert f"| `{zoo['s0']}` | model | weight: 0.7, density: 0.5 | - |" in card
    assert f"| `{zoo['s1']}` | model | weight: 0.3, density: 0.9 | - |" in card
    assert f"| `{zoo['base']}` | base | - | - |" in card
    assert "| `normalize` | `true` |" in card and "| `lambda` | `0.8` |" in card
    assert f"| tensors | {result.tensors:,} (" in card


def test_the_cli_cards_every_step_and_says_what_each_input_was_trained_on(zoo, tmp_path):
    # A student as `distillery sft` leaves it: summary.json beside the weights.
    student = tmp_path / "students" / "math"
    shutil.copytree(zoo["s2"], student)
    summary = {"data": "ws/shards/math", "steps": 12, "tokens": 34567, "first_loss": 2.5, "last_loss": 1.25}
    (student / "summary.json").write_text(json.dumps({**summary, "fit": {"kept": 321}}))
    config = tmp_path / "chain.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "steps": [
                    {
                        "name": "pair",
                        "merge_method": "linear",
                        "models": [{"model": str(zoo["s0"])}, {"model": str(student)}],
                    },
                    {
                        "name": "final",
                        "merge_method": "slerp",
                        "base_model": "pair",
                        "models": [{"model": "pair"}, {"model": str(zoo["s1"])}],
                        "parameters": {"t": 0.25},
                    },
                ]
            },
            sort_keys=False,
        )
    )
    assert main(["merge", str(config), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    first = (tmp_path / "out" / "steps" / "pair" / "README.md").read_text()
    assert "| method | `linear` |" in first
    trained = "SFT on `ws/shards/math`, 321 samples, 12 steps, 34,567 tokens, train loss 2.5000 -> 1.2500"
    assert f"| `{student}` | model | - | {trained} |" in first
    last = (tmp_path / "out" / "README.md").read_text()
    assert "| method | `slerp` |" in last and "| `t` | `0.25` |" in last
    assert "| `pair` | base | - | a linear merge |" in last, "an earlier step's output says what it is"
