"""Tiny causal LMs built from a config, with a tokenizer trained locally: for tests and the CPU demo.

Nothing is downloaded. The tokenizer is a byte-level BPE trained on the texts it is given, with
Qwen-style chat markers; its chat template renders every message verbatim, so `<think>` blocks
are kept (unlike templates that drop earlier reasoning).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

PAD, BOS, EOS = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
THINK_TOKENS = ["<think>", "</think>"]

CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)


def train_tokenizer(texts: Iterable[str], vocab_size: int = 2048, pad_equals_eos: bool = False):
    """Train a byte-level BPE tokenizer on `texts` and wrap it as a `PreTrainedTokenizerFast`.

    `pad_equals_eos=True` reproduces the common setup where padding reuses the EOS token (a trap
    for loss masks that drop pad ids): tests use it to show EOS is still supervised.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token=EOS,
        pad_token=EOS if pad_equals_eos else PAD,
        additional_special_tokens=[BOS],
    )
    # Ordinary added tokens (not special): they stay visible when decoding with skip_special_tokens.
    tokenizer.add_tokens(THINK_TOKENS)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_model(
    tokenizer,
    family: str = "qwen2",
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int = 128,
    max_positions: int = 4096,
    seed: int = 0,
    **config_overrides,
):
    """A randomly initialised Qwen2 or Llama causal LM sized for `tokenizer` (float32, CPU).

    `config_overrides` replace or extend the config values (e.g. `initializer_range`, a larger
    `vocab_size` than the tokenizer's to give a model a real-sized embedding).
    """
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    configs = {"qwen2": Qwen2Config, "llama": LlamaConfig}
    if family not in configs:
        raise ValueError(f"unknown tiny model family {family!r}; choose one of {sorted(configs)}")
    values = dict(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    config = configs[family](**{**values, **config_overrides})
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config, dtype=torch.float32)


def make_tiny_base(
    out_dir: str | Path, texts: Iterable[str], vocab_size: int = 2048, family: str = "qwen2", **model_kwargs
) -> Path:
    """Train a tokenizer on `texts`, build a tiny model for it, save both to `out_dir` (HF format)."""
    out = Path(out_dir)
    tokenizer = train_tokenizer(texts, vocab_size=vocab_size)
    model = build_model(tokenizer, family=family, **model_kwargs)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
