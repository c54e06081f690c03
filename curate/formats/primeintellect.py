"""PrimeIntellect verifiable-coding-problems (and the SYNTHETIC-1 tasks built like it): `prompt`,
`gold_standard_solution`, `verification_info` (JSON text: `language` and `test_cases`
[{input, output, type: stdin_stdout | function_call, fn_name}]; math tasks hold `ground_truth`),
`metadata` (JSON text), `source`, `task_type`, `in_source_id`, `problem_id`.

The gold-standard solution is the response (the source dataset's own solution), except in
SYNTHETIC-1 rows, whose `llm_response` is DeepSeek-R1's answer (the gold solution stays in
`meta`). Only a `verifiable_math` task's ground truth is a reference. Tests for another language
than Python are kept in `meta`, not run: the verifier runs Python.
"""

from __future__ import annotations

from typing import Any

from curate.formats.base import Adapter, Fields, Malformed, as_text
from curate.formats.code_tests import json_value, spec_from_published, spec_text
from curate.verify.code.specs import SpecError

CARD_TEACHER = "DeepSeek-R1"


class PrimeIntellect(Adapter):
    name = "primeintellect"
    description = "prompt, gold_standard_solution, verification_info{language, test_cases | ground_truth}"
    fields = ("problem_id", "task_type", "prompt", "gold_standard_solution", "verification_info")

    def detect(self, record: dict[str, Any]) -> bool:
        return "verification_info" in record and "prompt" in record

    def convert(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        fields = Fields(record)
        row: dict[str, Any] = dict(problem=fields.text("prompt", required=True), subset=fields.peek("source"))
        if "llm_response" in record:  # SYNTHETIC-1: DeepSeek-R1's answer, scored by the task's verifier
            row["response"] = fields.text("llm_response")
            row["teacher"] = fields.any_text("model_name") or CARD_TEACHER
        else:
            row["response"] = fields.any_text("gold_standard_solution")
        try:
            info = json_value(fields.get("verification_info"), "verification_info") or {}
        except SpecError as error:
            raise Malformed("verification_info", str(error)) from error
        if not isinstance(info, dict):
            raise Malformed("verification_info", f"expected an object, got {type(info).__name__}")
        meta = fields.unused()
        try:  # JSON text ({"difficulty": ..., "time_limit": ...}); kept as given when it is not
            if "metadata" in meta:
                meta["metadata"] = json_value(meta["metadata"], "metadata")
        except SpecError:
            pass
        task = str(record.get("task_type") or "")
        # Only a verifiable math task's ground truth is an answer; a judged task's is prose for a judge.
        if "ground_truth" in info and (not task or task.startswith("verifiable_math")):
            row["reference"] = as_text(info["ground_truth"], "verification_info.ground_truth", scalar=True)
        elif "ground_truth" in info:
            meta["verification_info"] = info
        language = str(info.get("language") or "python").lower()
        if info.get("test_cases"):
            if language != "python":
                meta["tests_unconverted"] = f"tests for {language}: the verifier runs Python"
                meta["verification_info"] = info
            else:
                try:
                    row["tests"] = spec_text(spec_from_published({"test_cases": info["test_cases"]}))
                except SpecError as error:
                    meta["tests_unconverted"] = f"verification_info.{error}"
                    meta["verification_info"] = info
        row["meta"] = meta
        return [row]
