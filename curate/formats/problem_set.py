"""Problem sets: a problem with an optional worked solution and final answer (MATH, MATH-500,
AIME, GSM8K); with neither, the row is a prompt for generation.

The worked solution is the response (a human teacher's trace) and the answer the reference.
GSM8K keeps both in `answer` ("… #### 72"): the text is the response and 72 the reference.
"""

from __future__ import annotations

from typing import Any

from curate.formats.base import Adapter, Fields

PROBLEM_KEYS = ("problem", "question", "prompt", "instruction")
SOLUTION_KEYS = ("solution", "worked_solution", "rationale")
ANSWER_KEYS = ("answer", "final_answer", "reference", "ground_truth", "gt")


class ProblemSet(Adapter):
    name = "problem_set"
    description = "problem/question + optional solution and answer (MATH, AIME, GSM8K) or prompt only"
    fields = (*PROBLEM_KEYS, *SOLUTION_KEYS, *ANSWER_KEYS)

    def detect(self, record: dict[str, Any]) -> bool:
        return any(k in record for k in PROBLEM_KEYS) and not any(
            k in record for k in ("response", "output", "completion", "generations")
        )

    def convert(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        fields = Fields(record)
        problem = fields.any_text(*PROBLEM_KEYS, required=True)
        solution = fields.any_text(*SOLUTION_KEYS)
        answer = fields.any_text(*ANSWER_KEYS, scalar=True)
        if solution is None and answer and "\n#### " in f"\n{answer}":
            solution, answer = answer, answer.rsplit("####", 1)[1].strip().replace(",", "")
        return [
            dict(
                problem=problem,
                response=solution,
                reference=answer,
                tests=fields.tests(),
                subset=fields.peek("source", "dataset"),
                meta=fields.unused(),
            )
        ]
