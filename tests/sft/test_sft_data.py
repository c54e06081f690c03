"""Loss masks: only assistant tokens (reasoning included) and the closing EOS are supervised."""

from __future__ import annotations

import pytest

from distill.sft.data import (
    IGNORE_INDEX,
    SFTDataError,
    TemplateError,
    encode_conversations,
    read_conversations,
)
from distill.sft.tiny import train_tokenizer

# Templates standing in for real ones, each with one of the known traps.
STRIPS_THINK = (  # DeepSeek-R1 style: keeps only what follows </think> in assistant turns
    "{%- for m in messages -%}"
    "{%- set content = m['content'].split('</think>')[-1] if m['role'] == 'assistant' else m['content'] -%}"
    "{{ '<|im_start|>' + m['role'] + '\\n' + content + '<|im_end|>\\n' }}"
    "{%- endfor -%}{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)
USER_ONLY = (  # a broken template that never prints assistant turns
    "{%- for m in messages if m['role'] != 'assistant' -%}{{ m['role'] + ': ' + m['content'] + '\\n' }}"
    "{%- endfor -%}"
)
NO_EOS = (  # ends turns with a newline only: EOS must be appended for the model to learn to stop
    "{%- for m in messages -%}{{ m['role'] + ': ' + m['content'] + '\\n' }}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ 'assistant: ' }}{%- endif -%}"
)
LOOKAHEAD = (  # marks the last message, so a prefix renders differently from the full conversation
    "{%- for m in messages -%}{{ m['role'] + ': ' + m['content'] }}{{ ' [end]' if loop.last else '' }}"
    "{{ '<|im_end|>\\n' }}{%- endfor -%}{%- if add_generation_prompt -%}{{ 'assistant: ' }}{%- endif -%}"
)


def supervised(example) -> list[int]:
    return [label for label in example.labels if label != IGNORE_INDEX]


def test_counts_equal_assistant_spans_plus_eos(tokenizer, conversations):
    examples = encode_conversations(tokenizer, conversations[:20])
    for conversation, example in zip(conversations[:20], examples, strict=True):
        reply = conversation[-1]["content"]
        expected = tokenizer(reply, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        assert supervised(example) == expected
        # and they are the last tokens but the template's trailing newline
        assert list(example.input_ids[-len(expected) - 1 : -1]) == expected


def test_multi_turn_with_system_supervises_every_assistant_turn(tokenizer):
    conversation = [
        {"role": "system", "content": "Think first."},
        {"role": "user", "content": "What is 2 + 3?"},
        {"role": "assistant", "content": "<think>\n2 + 3 = 5\n</think>\n\n5"},
        {"role": "user", "content": "And 5 + 4?"},
        {"role": "assistant", "content": "<think>\n5 + 4 = 9\n</think>\n\n9"},
    ]
    (example,) = encode_conversations(tokenizer, [conversation])
    eos = tokenizer.eos_token_id
    expected = []
    for message in conversation:
        if message["role"] == "assistant":
            expected += tokenizer(message["content"], add_special_tokens=False)["input_ids"] + [eos]
    assert supervised(example) == expected
    text = tokenizer.decode(supervised(example))
    assert "<think>" in text and "2 + 3 = 5" in text and "Think first" not in text and "And 5" not in text


def test_eos_is_learned_when_pad_equals_eos(conversations):
    tokenizer = train_tokenizer(
        [m["content"] for c in conversations for m in c], vocab_size=400, pad_equals_eos=True
    )
    assert tokenizer.pad_token_id == tokenizer.eos_token_id
    (example,) = encode_conversations(tokenizer, conversations[:1])
    assert supervised(example)[-1] == tokenizer.eos_token_id


def test_template_without_eos_gets_one_appended(tokenizer, conversations):
    (example,) = encode_conversations(tokenizer, conversations[:1], template=NO_EOS)
    assert example.input_ids[-1] == tokenizer.eos_token_id == supervised(example)[-1]
    assert tokenizer.decode(supervised(example)[:-1]).startswith(conversations[0][-1]["content"])


def test_template_that_strips_think_fails_loudly(tokenizer, conversations):
    with pytest.raises(TemplateError, match="drops the <think> reasoning"):
        encode_conversations(tokenizer, conversations[:1], template=STRIPS_THINK)


def test_template_without_assistant_tokens_fails_loudly(tokenizer):
    conversation = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    with pytest.raises(TemplateError, match="no supervised token"):
        encode_conversations(tokenizer, [conversation], template=USER_ONLY)


def test_template_that_renders_prefixes_differently_fails_loudly(tokenizer, conversations):
    with pytest.raises(TemplateError, match="differently depending on what follows"):
        encode_conversations(tokenizer, conversations[:1], template=LOOKAHEAD)


def test_bad_shards_are_named(tmp_path, conversations, make_shard):
    good = make_shard(tmp_path / "good", conversations[:3])
    assert len(read_conversations([good])) == 3
    bad = make_shard(tmp_path / "bad", [[{"role": "robot", "content": "x"}]])
    with pytest.raises(SFTDataError, match=r"train-00000.parquet:row 0 \(field 'messages\[0\].role'\)"):
        read_conversations([bad])
    no_reply = make_shard(tmp_path / "no_reply", [[{"role": "user", "content": "x"}]])
    with pytest.raises(SFTDataError, match="no assistant message"):
        read_conversations([no_reply])


def test_tiny_helper_round_trips_and_keeps_think(tmp_path, conversations):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from distill.sft.tiny import make_tiny_base

    base = make_tiny_base(tmp_path / "base", [m["content"] for c in conversations for m in c], vocab_size=400)
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base)
    assert model.config.vocab_size == len(tokenizer) and model.config.eos_token_id == tokenizer.eos_token_id
    assert len(tokenizer("<think>", add_special_tokens=False)["input_ids"]) == 1
    text = tokenizer.apply_chat_template(conversations[0], tokenize=False)
    assert conversations[0][1]["content"] in text  # rendered verbatim, <think> block included
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert "<think>" in tokenizer.decode(ids, skip_special_tokens=True)
