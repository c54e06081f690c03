"""KodCode (V1 and V1-SFT-R1): `question`, `solution` (Python code, GPT-4o's), `test` (pytest
functions that `from solution import ...`), `test_info`, `style`, `subset`, `question_id`,
`gpt_*`, and in the SFT-R1 variant `r1_solution` with DeepSeek-R1's transcript in `conversations`.

`test` becomes a `pytest` spec. The response is R1's answer when the row has one, else the
reference solution as a fenced block; the solution is code, never a math reference.
"""

from __future__ import annotations

from typing import Any

from curate.formats.base import Adapter, Fields, fenced
from curate.formats.chat import chat_turns, split_transcript
from curate.formats.code_tests import spec_text


class KodCode(Adapter):
    name = "kodcode"
    description = "question, solution, test (pytest functions), test_info, style, subset (+ conversations)"
    fields = ("question_id", "question", "solution", "test", "test_info", "style", "subset")

    def detect(self, record: dict[str, Any]) -> bool:
        return {"question", "test"} <= record.keys() and bool(
            {"test_info", "gpt_pass_sequence", "question_id"} & record.keys()
        )

    def convert(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        fields = Fields(record)
        problem = fields.text("question", required=True)
        solution = fields.text("solution")
        test = fields.text("test", required=True)
        response, teacher, extra = None, None, {}
        if isinstance(record.get("conversations"), list):
            user, assistant, others = split_transcript(chat_turns(fields, "conversations"), "conversations")
            if assistant:
                response, teacher = assistant["content"], "DeepSeek-R1"
            if user["content"] != problem:  # R1 was asked in other words than `question`
                extra["conversation_prompt"] = user["content"]
            if others:
                extra["other_turns"] = [{"role": t["role"], "content": t["content"]} for t in others]
        if response is None and solution:
            response, teacher = fenced(solution), "gpt-4o"
        meta = {**fields.unused(), **extra}
        if solution and response != fenced(solution):
            meta["solution"] = solution
        return [
            dict(
                problem=problem,
                response=response,
                tests=spec_text({"kind": "pytest", "code": test}),
                teacher=teacher,
                subset=fields.peek("subset"),
                meta=meta,
            )
        ]
