"""Shards -> token ids and labels, supervising only what the assistant says (reasoning included) and its EOS.

Assistant spans are found by rendering prefixes of each conversation with the model's own chat
template, not by trusting `{% generation %}` markers (which most templates lack, giving an
all-zero mask). For assistant message i:

    prompt_i = render(messages[:i], add_generation_prompt=True)
    upto_i   = render(messages[:i + 1])

The characters between len(prompt_i) and len(upto_i) are what the model must produce for that
turn. The full conversation is tokenised once, with offsets, and a token is supervised when it
starts inside such a span. Checks that fail loudly instead of training on a wrong mask:

- every prefix rendering must be a prefix of the full rendering (templates that rewrite earlier
  turns break the span arithmetic);
- the `<think>` reasoning of each assistant message must appear in its span (templates that strip
  reasoning would silently train the model to skip it);
- at least one token must be supervised.

EOS: a span is cut just after its last stop token (EOS, or an end-of-turn id from the generation
config), so the newline a template prints after `<|im_end|>` is not trained. If a template ends
the final assistant turn with no stop token, the tokenizer's EOS is appended and supervised. Labels
are built from the spans, never from "not a pad id", so EOS is learned even when pad == EOS.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curate.think import reasoning_of

IGNORE_INDEX = -100
ENCODE_CHUNK = 256  # conversations tokenised per batch call
ROLES = ("system", "user", "assistant")


class SFTDataError(Exception):
    """A problem with the training data or the chat template that the user must fix."""

    user_error = True


class TemplateError(SFTDataError):
    """The chat template would give a wrong (or empty) supervision mask."""


@dataclass
class Example:
    """One tokenised conversation: `labels[i]` is `input_ids[i]` where supervised, else IGNORE_INDEX.

    Stored as int32 arrays: a long-trace dataset holds hundreds of millions of tokens.
    """

    input_ids: np.ndarray
    labels: np.ndarray

    def __post_init__(self):
        self.input_ids = np.asarray(self.input_ids, dtype=np.int32)
        self.labels = np.asarray(self.labels, dtype=np.int32)

    @property
    def n_supervised(self) -> int:
        return int((self.labels != IGNORE_INDEX).sum())

    def __len__(self) -> int:
        return len(self.input_ids)


def shard_files(data_dir: str | Path, split: str = "train") -> list[Path]:
    """Parquet shards of one split in `data_dir`: `{split}-*.parquet`; for train, any other *.parquet too."""
    root = Path(data_dir)
    if not root.is_dir():
        raise SFTDataError(f"{root}: not a directory of parquet shards")
    files = sorted(root.glob(f"{split}-*.parquet"))
    if not files and split == "train":
        files = sorted(p for p in root.glob("*.parquet") if not p.name.startswith("val-"))
    return files


def _check_messages(messages: object, where: str) -> list[dict]:
    if not isinstance(messages, list) or not messages:
        raise SFTDataError(f"{where} (field 'messages'): expected a non-empty list of messages")
    for k, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise SFTDataError(f"{where} (field 'messages[{k}].role'): expected one of {ROLES}")
        if not isinstance(message.get("content"), str):
            raise SFTDataError(f"{where} (field 'messages[{k}].content'): expected a string")
    if not any(m["role"] == "assistant" for m in messages):
        raise SFTDataError(f"{where} (field 'messages'): no assistant message to learn from")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def read_conversations(files: Sequence[str | Path]) -> list[list[dict]]:
    """The `messages` column of every row of `files`, validated (file and row named on error)."""
    import pyarrow.parquet as pq

    conversations = []
    for path in files:
        try:
            table = pq.read_table(path, columns=["messages"])
        except KeyError as error:
            raise SFTDataError(f"{path}: no 'messages' column") from error
        except Exception as error:  # pyarrow raises several types for unreadable files
            raise SFTDataError(f"{path}: cannot read parquet ({error})") from error
        for row, messages in enumerate(table.column("messages").to_pylist()):
            conversations.append(_check_messages(messages, f"{path}:row {row}"))
    return conversations


def stop_token_ids(tokenizer, generation_config=None) -> set[int]:
    """Token ids that end an assistant turn: the tokenizer's EOS plus the generation config's EOS ids."""
    ids = set()
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    extra = getattr(generation_config, "eos_token_id", None)
    if extra is not None:
        ids.update(extra if isinstance(extra, list) else [extra])
    if not ids:
        raise TemplateError("the tokenizer has no EOS token: the model could never learn to stop")
    return ids


def _render(tokenizer, messages: list[dict], generation_prompt: bool, template: str | None) -> str:
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=generation_prompt, chat_template=template
    )


def assistant_spans(tokenizer, messages: list[dict], template: str | None = None) -> tuple[str, list[tuple]]:
    """Render `messages`; return the text and the (start, end) character span of each assistant turn."""
    full = _render(tokenizer, messages, False, template)
    spans: list[tuple[int, int]] = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = _render(tokenizer, messages[:i], True, template)
        upto = _render(tokenizer, messages[: i + 1], False, template)
        if not (upto.startswith(prompt) and full.startswith(upto)) or (spans and len(prompt) < spans[-1][1]):
            raise TemplateError(
                f"the chat template renders message {i} differently depending on what follows it, so the "
                "assistant span cannot be located; use a template that renders every turn verbatim "
                "(config `chat_template`)"
            )
        span = upto[len(prompt) :]
        if message["content"] and not span.strip():
            raise TemplateError(
                f"the chat template leaves no supervised token for assistant message {i}: it renders nothing "
                "for it; use a template that renders assistant turns (config `chat_template`)"
            )
        reasoning = reasoning_of(message["content"])
        if reasoning and reasoning not in span:
            raise TemplateError(
                f"the chat template drops the <think> reasoning of assistant message {i}; training on it "
                "would teach the model to skip reasoning. Use a template that keeps it (config `chat_template`)"
            )
        spans.append((len(prompt), len(upto)))
    return full, spans


def _label_tokens(ids, offsets, spans, stop_ids: set[int], eos_id: int | None) -> Example:
    labels = [IGNORE_INDEX] * len(ids)
    ids = list(ids)
    append_eos = False
    for n, (start, end) in enumerate(spans):
        inside = [j for j, (s, e) in enumerate(offsets) if start <= s < end and e > s]
        stops = [j for j in inside if ids[j] in stop_ids]
        if stops:
            inside = [j for j in inside if j <= stops[-1]]
        elif n == len(spans) - 1:
            append_eos = True
        for j in inside:
            labels[j] = ids[j]
    if append_eos:
        if eos_id is None:
            raise TemplateError(
                "the template ends the assistant turn without a stop token and there is no EOS"
            )
        last = max((j for j, label in enumerate(labels) if label != IGNORE_INDEX), default=len(ids) - 1)
        ids.insert(last + 1, eos_id)
        labels.insert(last + 1, eos_id)
    return Example(ids, labels)


def encode_conversations(
    tokenizer,
    conversations: Iterable[list[dict]],
    stop_ids: set[int] | None = None,
    template: str | None = None,
) -> list[Example]:
    """Tokenise conversations with the chat template; supervise assistant spans and the closing EOS."""
    if not getattr(tokenizer, "is_fast", False):
        raise SFTDataError(
            "a fast (Rust) tokenizer is needed: assistant spans are mapped through token offsets"
        )
    if template is None and not tokenizer.chat_template:
        raise TemplateError("the tokenizer has no chat template; set config `chat_template`")
    stop_ids = stop_ids if stop_ids is not None else stop_token_ids(tokenizer)
    conversations = list(conversations)
    examples = []
    # In chunks: token offsets as Python objects take ~100 bytes a token, too much for a whole dataset.
    for first in range(0, len(conversations), ENCODE_CHUNK):
        rendered = [
            assistant_spans(tokenizer, m, template) for m in conversations[first : first + ENCODE_CHUNK]
        ]
        encoded = tokenizer(
            [text for text, _ in rendered], add_special_tokens=False, return_offsets_mapping=True
        )
        for k, (_, spans) in enumerate(rendered):
            ids, offsets = encoded["input_ids"][k], encoded["offset_mapping"][k]
            example = _label_tokens(ids, offsets, spans, stop_ids, tokenizer.eos_token_id)
            if example.n_supervised == 0:
                raise TemplateError(
                    f"conversation {first + k}: the chat template leaves no supervised token; "
                    "check that it renders assistant messages"
                )
            examples.append(example)
    return examples


def read_template(path_or_text: str | None) -> str | None:
    """A chat template from config: a path to a .jinja file, or the template text itself."""
    if path_or_text is None:
        return None
    path = Path(path_or_text)
    if len(path_or_text) < 4096 and "{" not in path_or_text:
        if not path.is_file():
            raise SFTDataError(f"{path}: chat template file not found")
        return path.read_text()
    return path_or_text
