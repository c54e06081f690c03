"""open-r1 codeforces-cots: a Codeforces problem (`description`, `input_format`, `output_format`,
`examples`, `time_limit`, `memory_limit`, `interaction_format`, ...) with DeepSeek-R1's
`generation` for the prompt in `prompt` (or in `messages`).

`examples` are the statement's public stdin tests. The problem's `time_limit` (seconds) and
`memory_limit` (MB) go into the spec as `time_limit_s` and `memory_mb` (the judge's limits, which
the code verifier applies per case; they stay in `meta` too). Interactive problems (an
`interaction_format`) cannot be judged by stdin examples: they are kept without tests, said in
`meta.tests_unconverted`.
"""

from __future__ import annotations

from typing import Any

from curate.formats.base import Adapter, Fields
from curate.formats.chat import chat_turns, split_transcript
from curate.formats.code_tests import spec_text
from curate.verify.code.specs import SpecError, from_codeforces

CARD_TEACHER = "DeepSeek-R1"


def _same_transcript(messages: Any, problem: str | None, response: str | None) -> bool:
    return isinstance(messages, list) and [
        (m.get("role"), m.get("content")) for m in messages if isinstance(m, dict)
    ] == [("user", problem), ("assistant", response)]


class CodeforcesCots(Adapter):
    name = "codeforces_cots"
    description = "Codeforces problem fields + examples[{input, output}] + generation/messages (open-r1)"
    fields = ("contest_id", "description", "input_format", "examples", "generation", "time_limit")

    def detect(self, record: dict[str, Any]) -> bool:
        return (
            "examples" in record
            and any(k in record for k in ("generation", "messages", "prompt"))
            and ("contest_id" in record or "input_format" in record)
        )

    def convert(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        fields = Fields(record)
        problem = fields.any_text("prompt")
        response = fields.any_text("generation")
        messages = record.get("messages")
        if isinstance(messages, list) and (not problem or response is None):
            user, assistant, _ = split_transcript(chat_turns(fields))
            problem = problem or user["content"]
            response = response if response is not None else assistant["content"] if assistant else None
        elif _same_transcript(messages, problem, response):
            fields.get("messages")  # the prompt and generation again, as a transcript
        if not problem:
            problem = fields.any_text("description", required=True)
        meta: dict[str, Any] = {}
        row: dict[str, Any] = dict(problem=problem, response=response, teacher=CARD_TEACHER)
        examples = fields.get("examples")
        if record.get("interaction_format"):
            meta["tests_unconverted"] = "interactive problem: its examples are not stdin tests"
            meta["examples"] = examples
        elif examples:
            try:
                limits = {key: record.get(key) for key in ("time_limit", "memory_limit")}
                row["tests"] = spec_text(from_codeforces({"tests": examples, **limits}))
            except SpecError as error:
                meta["tests_unconverted"] = f"examples: {error}"
                meta["examples"] = examples
        row["meta"] = {**fields.unused(), **meta}
        return [row]
