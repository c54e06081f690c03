"""Chat transcripts: `messages` or `conversations`, OpenAI (role/content) or ShareGPT (from/value).

The last assistant turn is the response and the user turn before it the problem; a system prompt
and earlier turns go to `meta`. A transcript with no assistant turn is a prompt for generation.
"""

from __future__ import annotations

from typing import Any

from curate.formats.base import Adapter, Fields, Malformed, as_text

ROLES = {
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "model": "assistant",
    "bot": "assistant",
    "system": "system",
}
REFERENCE_KEYS = ("reference", "answer", "reference_answer", "gold", "ground_truth", "solution")


def chat_turns(fields: Fields, key: str | None = None) -> list[dict[str, Any]]:
    """The transcript (`key`, else messages or conversations) as [{role, content, extra}], roles
    normalised; raises Malformed on bad turns."""
    key = key or fields.first_key("messages", "conversations")
    if key is None:
        raise Malformed("messages", "missing")
    turns = fields.get(key)
    if not isinstance(turns, list):
        raise Malformed(key, f"expected a list of turns, got {type(turns).__name__}")
    parsed = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise Malformed(f"{key}[{i}]", f"expected an object, got {type(turn).__name__}")
        role_key, content_key = ("role", "content") if "role" in turn else ("from", "value")
        role = ROLES.get(str(turn.get(role_key, "")).lower())
        if role is None:
            raise Malformed(f"{key}[{i}].{role_key}", f"unknown role {turn.get(role_key)!r}")
        content = as_text(turn.get(content_key), f"{key}[{i}].{content_key}") or ""
        extra = {k: v for k, v in turn.items() if k not in (role_key, content_key)}
        parsed.append({"role": role, "content": content, "extra": extra})
    return parsed


def looks_like_chat(record: dict[str, Any]) -> bool:
    turns = record.get("messages", record.get("conversations"))
    return (
        isinstance(turns, list)
        and bool(turns)
        and isinstance(turns[0], dict)
        and ({"role", "content"} <= turns[0].keys() or {"from", "value"} <= turns[0].keys())
    )


def split_transcript(turns: list[dict[str, Any]], field: str = "messages") -> tuple[dict, dict | None, list]:
    """(user turn, last assistant turn or None, every other turn) of a transcript."""
    last_assistant = max((i for i, t in enumerate(turns) if t["role"] == "assistant"), default=None)
    end = last_assistant if last_assistant is not None else len(turns)
    user_index = max((i for i, t in enumerate(turns[:end]) if t["role"] == "user"), default=None)
    if user_index is None:
        raise Malformed(field, "no user turn to take the problem from")
    assistant = turns[last_assistant] if last_assistant is not None else None
    others = [t for i, t in enumerate(turns) if i not in (user_index, last_assistant)]
    return turns[user_index], assistant, others


class Chat(Adapter):
    name = "chat"
    description = "messages/conversations with role/content or from/value (OpenAI, ShareGPT)"
    fields = ("messages", "conversations")

    def detect(self, record: dict[str, Any]) -> bool:
        return looks_like_chat(record)

    def convert(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        fields = Fields(record)
        user, assistant, others = split_transcript(chat_turns(fields))
        row: dict[str, Any] = dict(
            problem=user["content"],
            response=assistant["content"] if assistant else None,
            reference=fields.any_text(*REFERENCE_KEYS, scalar=True),
            subset=fields.peek("source"),
            teacher=fields.any_text("model", "teacher", "generator"),
        )
        if assistant and isinstance(assistant["extra"].get("reasoning_content"), str):
            row["reasoning"] = assistant["extra"].pop("reasoning_content")
        row["tests"] = fields.tests()
        meta = fields.unused()
        if others:
            meta["other_turns"] = [{"role": t["role"], "content": t["content"], **t["extra"]} for t in others]
        for turn, name in ((user, "user_extra"), (assistant, "assistant_extra")):
            if turn and turn["extra"]:
                meta[name] = turn["extra"]
        row["meta"] = meta
        return [row]
