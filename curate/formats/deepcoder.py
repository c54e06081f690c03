"""rllm / DeepCoder code problems: `problem`, `tests` (JSON text or value, in whichever layout the
subset came with: LiveCodeBench cases, PrimeIntellect cases, TACO inputs/outputs, Codeforces stdin
cases, or LeetCode's `{"functional": "def check(candidate): ... check(Solution().method)"}`),
`metadata` (JSON text; `func_name` for functional LiveCodeBench rows), `solutions`, `starter_code`.
"""

from __future__ import annotations

from typing import Any

from curate.formats.base import Adapter, Fields, Malformed, fenced
from curate.formats.code_tests import json_value, spec_from_published, spec_text
from curate.verify.code.specs import SpecError


def _typed_tests(value: Any) -> bool:
    """Tests in a layout the plain stdin adapter does not read: JSON text, an object, typed cases."""
    if isinstance(value, str | dict):
        return True
    return (
        isinstance(value, list)
        and bool(value)
        and isinstance(value[0], dict)
        and bool({"testtype", "type", "fn_name"} & value[0].keys())
    )


class DeepCoder(Adapter):
    name = "deepcoder"
    description = "problem + tests as JSON text/object (rllm, DeepCoder: lcb, taco, primeintellect, leetcode)"
    fields = ("problem", "tests", "metadata", "solutions", "starter_code")

    def detect(self, record: dict[str, Any]) -> bool:
        # A trace row (a response beside its tests, as `generate` writes) is prompt_response's.
        return (
            "problem" in record
            and "tests" in record
            and "response" not in record
            and _typed_tests(record["tests"])
        )

    def convert(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        fields = Fields(record)
        problem = fields.text("problem", required=True)
        starter = fields.text("starter_code") if "starter_code" in record else None
        if starter and starter.strip() and starter.strip() not in problem:
            problem = f"{problem}\n\n{fenced(starter)}"
        try:
            metadata = json_value(fields.get("metadata"), "metadata")
            fn_name = metadata.get("func_name") if isinstance(metadata, dict) else None
            tests = spec_text(spec_from_published(fields.get("tests"), fn_name=fn_name))
            solutions = json_value(fields.get("solutions"), "solutions") if "solutions" in record else None
        except SpecError as error:
            field, _, message = str(error).partition(": ")
            raise Malformed(field or None, message or str(error)) from error
        response = fields.any_text("response")
        meta = fields.unused()
        if metadata is not None:
            meta["metadata"] = metadata
        common = dict(problem=problem, tests=tests, subset=fields.peek("data_source"))
        codes = [code for code in solutions if isinstance(code, str)] if isinstance(solutions, list) else []
        if response is not None or not codes:
            return [
                dict(
                    common,
                    response=response,
                    meta={**meta, "solutions": solutions} if "solutions" in record else meta,
                )
            ]
        return [
            dict(common, response=fenced(code), meta={**meta, "solution_index": i})
            for i, code in enumerate(codes)
        ]
