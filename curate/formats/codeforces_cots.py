"""open-r1 codeforces-cots: a Codeforces problem (`description`, `input_format`, `output_format`,
`examples`, `time_limit`, `memory_limit`, `interaction_format`, ...) with DeepSeek-R1's
`generation` for the prompt in `prompt` (or in `messages`).

`examples` are the statement's public stdin tests. The problem's `time_limit`/`memory_limit` stay
in `meta` and are not enforced: they are set for C++, and the verifier's own limits apply. Interactive problems (an `interaction_format`) cannot be judged by stdin
examples: they are kept without tests, said in `meta.tests_unconverted`.
"""

from __future__ import annotations

from typing import Any

from curate.formats.base import Adapter, Fields
from curate.formats.chat import chat_turns, split_transcript
from curate.formats.code_tests import spec_from_published, spec_text
from curate.verify.code.specs import SpecError

CARD_TEACHER = "DeepSeek-R1"


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
        if isinstance(record.get("prompt"), str) and record["prompt"].strip():
            problem = fields.text("prompt")
            response = fields.any_text("generation")
            if isinstance(record.get("messages"), list):
                fields.get("messages")  # the same prompt and generation as a transcript
        elif isinstance(record.get("messages"), list):
            user, assistant, _ = split_transcript(chat_turns(fields))
            problem, response = user["content"], assistant["content"] if assistant else None
            fields.get("generation")
        else:
            problem = fields.any_text("description", required=True)
            response = fields.any_text("generation")
        meta: dict[str, Any] = {}
        row: dict[str, Any] = dict(problem=problem, response=response, teacher=CARD_TEACHER)
        examples = fields.get("examples")
        if record.get("interaction_format"):
            meta["tests_unconverted"] = "interactive problem: its examples are not stdin tests"
            meta["examples"] = examples
        elif examples:
            try:
                row["tests"] = spec_text(spec_from_published(examples))
            except SpecError as error:
                meta["tests_unconverted"] = f"examples: {error}"
                meta["examples"] = examples
        row["meta"] = {**fields.unused(), **meta}
        return [row]
