"""OpenThoughts-114k's `metadata` config: `problem`, `deepseek_reasoning`, `deepseek_solution`,
`ground_truth_solution`, `domain` (math, code, science, puzzle), `source`, `test_cases`,
`starter_code`.

The reasoning and solution are DeepSeek-R1's; a code problem's `test_cases` (APPS/TACO
inputs/outputs, JSON text) become its tests and its starter code joins the problem; a math
problem's ground-truth solution is the reference (other domains keep theirs in `meta`).
"""

from __future__ import annotations

from typing import Any

from curate.formats.base import Adapter, Fields, fenced
from curate.formats.code_tests import spec_from_published, spec_text
from curate.verify.code.specs import SpecError

CARD_TEACHER = "DeepSeek-R1"


class OpenThoughtsMetadata(Adapter):
    name = "openthoughts_metadata"
    description = "problem, deepseek_reasoning, deepseek_solution, ground_truth_solution, test_cases, domain"
    fields = ("problem", "deepseek_reasoning", "deepseek_solution", "ground_truth_solution", "test_cases")

    def detect(self, record: dict[str, Any]) -> bool:
        return "problem" in record and ("deepseek_reasoning" in record or "deepseek_solution" in record)

    def convert(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        fields = Fields(record)
        problem = fields.text("problem", required=True)
        starter = fields.text("starter_code") if "starter_code" in record else None
        if starter and starter.strip() and starter.strip() not in problem:
            problem = f"{problem}\n\n{fenced(starter)}"
        row: dict[str, Any] = dict(
            problem=problem,
            reasoning=fields.text("deepseek_reasoning"),
            response=fields.text("deepseek_solution"),
            teacher=CARD_TEACHER,
            subset=fields.peek("source"),
        )
        meta: dict[str, Any] = {}
        test_cases = record.get("test_cases")
        if test_cases not in (None, "", "null"):
            fields.get("test_cases")
            try:
                row["tests"] = spec_text(spec_from_published(test_cases))
            except SpecError as error:
                meta["tests_unconverted"] = str(error)
                meta["test_cases"] = test_cases
        # A math ground truth is an answer to check; a puzzle's or a code problem's is not (it stays in meta).
        domain = str(record.get("domain") or "").lower()
        if domain == "math" or (not domain and "tests" not in row):
            row["reference"] = fields.any_text("ground_truth_solution", scalar=True)
        row["meta"] = {**fields.unused(), **meta}
        return [row]
