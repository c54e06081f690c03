"""nvidia OpenMathReasoning: `problem`, `generated_solution` (the teacher's answer with its
`<think>` reasoning), `expected_answer`, `generation_model`, `problem_source`, `inference_mode`
(cot, tir, genselect), `pass_rate_72b_tir`, `problem_type`, `used_in_kaggle`.

Each record is one generation, so the several generations of one problem are several rows with
one problem_id and distinct responses.
"""

from __future__ import annotations

from typing import Any

from curate.formats.base import Adapter, Fields


class OpenMathReasoning(Adapter):
    name = "openmathreasoning"
    description = "problem, generated_solution, expected_answer, generation_model, inference_mode"
    fields = ("problem", "generated_solution", "expected_answer", "generation_model", "inference_mode")

    def detect(self, record: dict[str, Any]) -> bool:
        return "generated_solution" in record and "problem" in record

    def convert(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        fields = Fields(record)
        return [
            dict(
                problem=fields.text("problem", required=True),
                response=fields.text("generated_solution"),
                reference=fields.any_text("expected_answer", scalar=True),
                teacher=fields.any_text("generation_model"),
                subset=fields.peek("problem_source"),
                meta=fields.unused(),
            )
        ]
