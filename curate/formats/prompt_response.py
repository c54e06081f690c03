"""Plain prompt/response pairs (and Alpaca's instruction/input/output)."""

from __future__ import annotations

from typing import Any

from curate.formats.base import Adapter, Fields

PROMPT_KEYS = ("prompt", "instruction", "question", "problem", "query")
RESPONSE_KEYS = ("response", "output", "completion", "chosen", "answer_text")


class PromptResponse(Adapter):
    name = "prompt_response"
    description = "prompt/instruction(+input) with response/output/completion"
    fields = (*PROMPT_KEYS, *RESPONSE_KEYS)

    def detect(self, record: dict[str, Any]) -> bool:
        return any(k in record for k in PROMPT_KEYS) and any(k in record for k in RESPONSE_KEYS)

    def convert(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        fields = Fields(record)
        problem = fields.any_text(*PROMPT_KEYS, required=True)
        extra_input = fields.text("input") if "instruction" in record and "input" in record else None
        if extra_input:
            problem = f"{problem}\n\n{extra_input}"
        return [
            dict(
                problem=problem,
                response=fields.any_text(*RESPONSE_KEYS),
                reasoning=fields.any_text("reasoning", "reasoning_content", "thinking"),
                reference=fields.any_text("reference", "answer", "gold", "ground_truth", scalar=True),
                tests=fields.tests(),
                subset=fields.peek("source"),
                teacher=fields.any_text("model", "teacher", "generator"),
                meta=fields.unused(),
            )
        ]
