"""tokenizer_source by token: union and a model as source, with tokenizers trained here on two corpora."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from merge import run_config

MATH = [
    f"solve {a} x + {b} = {a * 3 + b} so x equals 3; the sum of {a} and {b} is {a + b}"
    for a in range(40)
    for b in range(3)
]
CODE = [
    f"def add_{a}(x): return x + {a}  # returns the sum; print(add_{a}({b}))"
    for a in range(40)
    for b in range(3)
]


def _train(texts: list[str], size: int, extra: str):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=size,
        special_tokens=["<|endoftext|>"],
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|endoftext|>")
    fast.add_special_tokens({"additional_special_tokens": [extra]})
    return fast


def _save(directory: Path, tokenizer, state: dict[str, torch.Tensor], tiny) -> Path:
    from safetensors.torch import save_file

    directory.mkdir(parents=True)
    tokenizer.save_pretrained(directory)
    rows = len(tokenizer)
    config = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", **tiny.config(vocab_size=rows)}
    (directory / "config.json").write_text(json.dumps(config))
    save_file({name: value.contiguous() for name, value in state.items()}, directory / "model.safetensors")
    return directory


@pytest.fixture(scope="module")
def pair(tmp_path_factory, tiny):
    """A math model and a code model of one base whose tokenizers differ; shared tokens share base rows."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    root = tmp_path_factory.mktemp("vocab")
    math_tok, code_tok = _train(MATH, 300, "<math>"), _train(CODE, 310, "<code>")
    torch.manual_seed(0)
    union = sorted(set(math_tok.get_vocab()) | set(code_tok.get_vocab()))
    core = Qwen2ForCausalLM(Qwen2Config(**tiny.config(vocab_size=len(union)))).state_dict()
    base_rows = {token: index for index, token in enumerate(union)}  # one "pretrained" row per token
    generator = torch.Generator().manual_seed(1)
    models = {}
    for name, tokenizer in (("math", math_tok), ("code", code_tok)):
        vocab = tokenizer.get_vocab()
        order = torch.tensor(
            [base_rows[token] for token, _ in sorted(vocab.items(), key=lambda item: item[1])]
        )
        state = {}
        for key, value in core.items():
            value = value[order] if key in ("model.embed_tokens.weight", "lm_head.weight") else value
            state[key] = value + 0.02 * torch.randn(value.shape, generator=generator)
        models[name] = (_save(root / name, tokenizer, state, tiny), vocab, state)
    return models


def _write(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "merge.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _rows(state: dict, vocab: dict[str, int], name: str) -> dict[str, torch.Tensor]:
    return {token: state[name][index] for token, index in vocab.items()}


@pytest.mark.parametrize("name", ["model.embed_tokens.weight", "lm_head.weight"])
def test_union_keeps_every_token_and_merges_shared_ones_by_token(pair, tiny, tmp_path, name):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    (math_dir, math_vocab, math_state), (code_dir, code_vocab, code_state) = pair["math"], pair["code"]
    config = {
        "merge_method": "linear",
        "tokenizer_source": "union",
        "dtype": "float32",
        "models": [{"model": str(math_dir)}, {"model": str(code_dir)}],
    }
    (result,) = run_config(_write(tmp_path, config), tmp_path / "out")
    merged_tok = AutoTokenizer.from_pretrained(tmp_path / "out")
    vocab = merged_tok.get_vocab()
    assert set(vocab) == set(math_vocab) | set(code_vocab)
    assert sorted(vocab.values()) == list(range(len(vocab)))
    # The math tokenizer comes first: its tokens keep their ids.
    assert all(vocab[token] == index for token, index in math_vocab.items())
    merged = tiny.load(tmp_path / "out")[name]
    assert merged.shape[0] == len(vocab)
    math_rows, code_rows = _rows(math_state, math_vocab, name), _rows(code_state, code_vocab, name)
    shared = set(math_vocab) & set(code_vocab)
    only_code = set(code_vocab) - shared
    assert len(shared) > 256 and len(only_code) > 10 and len(set(math_vocab) - shared) > 10
    for token in shared:  # the mean of the two models' own rows for the token, wherever its ids are
        torch.testing.assert_close(merged[vocab[token]], (math_rows[token] + code_rows[token]) / 2)
    moved = [token for token in shared if math_vocab[token] != code_vocab[token]]
    assert len(moved) >= 10  # the two tokenizers number some shared tokens differently
    for token in only_code:  # a token one model knows keeps that model's row
        torch.testing.assert_close(merged[vocab[token]], code_rows[token])
    for token in set(math_vocab) - shared:
        torch.testing.assert_close(merged[vocab[token]], math_rows[token])
    assert json.loads((tmp_path / "out" / "config.json").read_text())["vocab_size"] == len(vocab)
    assert any("union" in note for note in result.notes)
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    ids = merged_tok("def add_3(x): solve <code> <math>", return_tensors="pt").input_ids
    assert int(ids.max()) >= len(math_vocab)  # the code model's own tokens are used
    assert model(ids).logits.shape == (1, ids.shape[1], len(vocab))


def test_a_model_as_source_matches_rows_by_token(pair, tiny, tmp_path):
    (math_dir, math_vocab, math_state), (code_dir, code_vocab, code_state) = pair["math"], pair["code"]
    config = {
        "merge_method": "task_arithmetic",
        "base_model": str(math_dir),
        "tokenizer_source": str(code_dir),
        "models": [{"model": str(code_dir), "parameters": {"weight": 0.5}}],
    }
    run_config(_write(tmp_path, config), tmp_path / "out")
    merged = tiny.load(tmp_path / "out")["model.embed_tokens.weight"]
    assert merged.shape[0] == len(code_vocab)
    assert json.loads((tmp_path / "out" / "tokenizer.json").read_text()) == json.loads(
        (code_dir / "tokenizer.json").read_text()
    )
    name = "model.embed_tokens.weight"
    math_rows, code_rows = _rows(math_state, math_vocab, name), _rows(code_state, code_vocab, name)
    for token, index in code_vocab.items():
        if token in math_vocab:  # base + 0.5 (code - base), each model's row for that token
            expected = math_rows[token] + 0.5 * (code_rows[token] - math_rows[token])
        else:  # only the code model has it: its row fills the base's gap, so the delta is 0
            expected = code_rows[token]
        torch.testing.assert_close(merged[index], expected)


def test_union_agrees_with_mergekit_token_by_token(pair, tiny, tmp_path, monkeypatch):
    pytest.importorskip("mergekit")
    from mergekit.config import MergeConfiguration
    from mergekit.merge import MergeOptions, run_merge
    from transformers import AutoTokenizer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (math_dir, *_), (code_dir, *_) = pair["math"], pair["code"]
    for method, extra in (("ties", {"parameters": {"weight": 0.7, "density": 0.6}}), ("linear", {})):
        config = {
            "merge_method": method,
            "base_model": str(math_dir),
            "tokenizer_source": "union",
            "dtype": "float32",
            "models": [
                {"model": str(math_dir), **({} if method == "ties" else {"parameters": {"weight": 0.3}})},
                {"model": str(code_dir), **(extra or {"parameters": {"weight": 0.7}})},
            ],
        }
        run_merge(
            MergeConfiguration.model_validate(config), str(tmp_path / method / "mk"), MergeOptions(quiet=True)
        )
        run_config(_write(tmp_path, config), tmp_path / method / "ours")
        theirs_vocab = AutoTokenizer.from_pretrained(tmp_path / method / "mk").get_vocab()
        ours_vocab = AutoTokenizer.from_pretrained(tmp_path / method / "ours").get_vocab()
        assert set(theirs_vocab) == set(ours_vocab)
        theirs, ours = tiny.load(tmp_path / method / "mk"), tiny.load(tmp_path / method / "ours")
        worst = 0.0
        for name in ("model.embed_tokens.weight", "lm_head.weight"):
            order_theirs = torch.tensor([theirs_vocab[t] for t in sorted(ours_vocab)])
            order_ours = torch.tensor([ours_vocab[t] for t in sorted(ours_vocab)])
            worst = max(worst, (theirs[name][order_theirs] - ours[name][order_ours]).abs().max().item())
        others = max(
            (theirs[n] - ours[n]).abs().max().item() for n in ours if "embed" not in n and "lm_head" not in n
        )
        print(
            f"union {method}: max |diff| vs mergekit, token by token = {worst:.3g}, other tensors = {others:.3g}"
        )
        assert worst <= 1e-5 and others <= 1e-5
