"""AM-DeepSeek-R1-Distilled: chat messages whose `info` holds think_content, answer_content,
reference_answer, test_case, source and model_name."""

from __future__ import annotations

import json
from typing import Any

from curate.formats.base import Adapter, Fields, Malformed, as_text, tests_json
from curate.formats.chat import chat_turns, split_transcript
from curate.verify.code.specs import from_apps, from_codeforces, parse_spec

INFO_KEYS = {"think_content", "answer_content", "reference_answer", "test_case"}


class AMDistill(Adapter):
    name = "am_distill"
    description = "messages with info{think_content, answer_content, reference_answer, test_case}"

    def detect(self, record: dict[str, Any]) -> bool:
        messages = record.get("messages")
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
        row: dict[str, Any] = dict(
            problem=user["content"],
            response=assistant["content"] if assistant else None,
            reasoning=as_text(info.get("think_content"), "info.think_content"),
            reference=reference or None,
            source=as_text(merged.get("source"), "info.source"),
            teacher=as_text(merged.get("model_name"), "info.model_name"),
        )
        test_case = merged.get("test_case")
        if test_case not in (None, "", "null"):
            try:
                parsed = json.loads(test_case) if isinstance(test_case, str) else test_case
                row["tests"] = tests_json(spec_from_test_case(parsed))
            except (ValueError, TypeError) as error:
                raise Malformed("info.test_case", str(error)) from error
        meta = fields.unused()
        meta["user_info"], meta["assistant_info"] = user_info, info
        if others:
            meta["other_turns"] = [{"role": t["role"], "content": t["content"]} for t in others]
        row["meta"] = meta
        return [row]


def spec_from_test_case(value: Any) -> dict[str, Any]:
    """AM's `test_case`: a spec already, APPS-style inputs/outputs, or a list of stdin cases."""
    if isinstance(value, dict) and "kind" in value:
        return parse_spec(value)
    if isinstance(value, dict) and "inputs" in value:
        return from_apps({"input_output": value})
    if isinstance(value, list):
        return from_codeforces({"tests": value})
    raise ValueError("test_case: not a test format distillery knows (stdin cases, APPS input_output, or a spec)")
