"""AM-DeepSeek-R1-Distilled: chat messages whose `info` holds think_content, answer_content,
reference_answer, test_case, source and model_name.

`test_case` comes in several layouts (APPS inputs/outputs, stdin case lists, AM's own
`{call_type, fn_name, assert_case}`); one distillery cannot run keeps the row, untested, with the
reason in `meta.tests_unconverted`. With no `model_name`, the teacher is the one the dataset card
names, DeepSeek-R1.
"""

from __future__ import annotations

from typing import Any

from curate.formats.base import Adapter, Fields, as_text
from curate.formats.chat import chat_turns, split_transcript
from curate.formats.code_tests import spec_from_published, spec_text
from curate.verify.code.specs import SpecError

INFO_KEYS = {"think_content", "answer_content", "reference_answer", "test_case"}
CARD_TEACHER = "DeepSeek-R1"


class AMDistill(Adapter):
    name = "am_distill"
    description = "messages with info{think_content, answer_content, reference_answer, test_case}"
    fields = ("messages", "info")

    def detect(self, record: dict[str, Any]) -> bool:
        messages = record.get("messages", record.get("conversations"))
        return isinstance(messages, list) and any(
            isinstance(m, dict) and isinstance(m.get("info"), dict) and INFO_KEYS & m["info"].keys()
            for m in messages
        )

    def convert(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        fields = Fields(record)
        user, assistant, others = split_transcript(chat_turns(fields))
        user_info = user["extra"].get("info") or {}
        info = (assistant["extra"].get("info") if assistant else None) or {}
        merged = {**user_info, **{k: v for k, v in info.items() if v not in (None, "")}}
        reference = as_text(merged.get("reference_answer"), "info.reference_answer", scalar=True)
        teacher = as_text(merged.get("model_name"), "info.model_name")
        row: dict[str, Any] = dict(
            problem=user["content"],
            response=assistant["content"] if assistant else None,
            reasoning=as_text(info.get("think_content"), "info.think_content"),
            reference=reference or None,
            subset=as_text(merged.get("source"), "info.source"),
            # The 1.4M set's card names its teacher; other AM sets (conversations) name theirs per row.
            teacher=teacher or (CARD_TEACHER if assistant and "messages" in record else None),
        )
        meta = fields.unused()
        test_case = merged.get("test_case")
        if test_case not in (None, "", "null", "None"):
            try:
                row["tests"] = spec_text(spec_from_published(test_case))
            except SpecError as error:
                meta["tests_unconverted"] = str(error)
        meta["user_info"], meta["assistant_info"] = user_info, info
        if others:
            meta["other_turns"] = [{"role": t["role"], "content": t["content"]} for t in others]
        row["meta"] = meta
        return [row]
