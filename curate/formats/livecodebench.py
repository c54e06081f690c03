"""LiveCodeBench code generation: question_content, starter_code, public_test_cases and
private_test_cases (JSON text; the private ones often base64 of zlib of a pickled JSON string),
metadata (JSON text with `func_name` for functional problems).

Public and private cases form one spec: stdin cases, or, for functional problems, calls of
`metadata.func_name` (a method of the starter code's `class Solution`) with one JSON argument a
line. The rows are prompts: LiveCodeBench ships no solutions.
"""

from __future__ import annotations

from typing import Any

from curate.formats.base import Adapter, Fields, Malformed, fenced
from curate.formats.code_tests import decode_compressed_json, json_value, spec_from_published, spec_text
from curate.verify.code.specs import SpecError


class LiveCodeBench(Adapter):
    name = "livecodebench"
    description = (
        "question_content, starter_code, public/private_test_cases (JSON, maybe zlib+pickle), metadata"
    )
    fields = ("question_title", "question_content", "starter_code", "public_test_cases", "private_test_cases")

    def detect(self, record: dict[str, Any]) -> bool:
        return "question_content" in record and (
            "public_test_cases" in record or "private_test_cases" in record
        )

    def convert(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        fields = Fields(record)
        problem = fields.text("question_content", required=True)
        starter = fields.text("starter_code") if "starter_code" in record else None
        if starter and starter.strip():
            problem = f"{problem}\n\n{fenced(starter)}"
        try:
            metadata = json_value(fields.get("metadata"), "metadata") or {}
            cases = list(json_value(fields.get("public_test_cases"), "public_test_cases") or [])
            private = fields.get("private_test_cases")
            if isinstance(private, str) and private.strip():
                cases += decode_compressed_json(private, "private_test_cases") or []
            elif isinstance(private, list):
                cases += private
            fn_name = metadata.get("func_name") if isinstance(metadata, dict) else None
            tests = spec_text(spec_from_published(cases, fn_name=fn_name))
        except SpecError as error:
            field, _, message = str(error).partition(": ")
            raise Malformed(field or None, message or str(error)) from error
        meta = fields.unused()
        meta["metadata"] = metadata
        meta["test_counts"] = {"public_and_private": len(cases)}
        return [dict(problem=problem, tests=tests, subset=fields.peek("platform"), meta=meta)]
