"""OpenThoughts and Bespoke-Stratos: `system` + ShareGPT `conversations` whose assistant turn is
`<|begin_of_thought|> … <|end_of_thought|> <|begin_of_solution|> … <|end_of_solution|>`.

The transcript is read as any chat; the reasoning comes out of the thought markers at ingest.
Every dataset written with these markers (OpenThoughts-114k, Bespoke-Stratos) is DeepSeek-R1's.
"""

from __future__ import annotations

from typing import Any

from curate.formats.chat import Chat, looks_like_chat

MARKER = "<|begin_of_thought|>"


class OpenThoughts(Chat):
    name = "openthoughts"
    description = "system + conversations with <|begin_of_thought|> / <|begin_of_solution|> markers"
    fields = ("system", "conversations")

    def detect(self, record: dict[str, Any]) -> bool:
        if not looks_like_chat(record):
            return False
        turns = record.get("conversations", record.get("messages"))
        return any(MARKER in str(turn.get("value", turn.get("content", ""))) for turn in turns)

    def convert(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        rows = super().convert(record)
        for row in rows:
            if row.get("response") is not None:
                row["teacher"] = row.get("teacher") or "DeepSeek-R1"
        return rows
