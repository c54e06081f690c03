"""Code problems with tests: HumanEval, MBPP, LeetCode-style, APPS/TACO and Codeforces stdin sets.

Their reference solutions become fenced responses; their tests become distillery test specs.
"""

from __future__ import annotations

import json
from typing import Any

from curate.formats.base import Adapter, Fields, Malformed, fenced, tests_json
from curate.verify.code.specs import from_apps, from_codeforces, from_humaneval, from_leetcode, from_mbpp


def _spec(convert, record: dict[str, Any]) -> str:
    """The record's tests as a spec (JSON text); SpecError names the field it could not use."""
    try:
        return tests_json(convert(record))
    except ValueError as error:
        field, _, message = str(error).partition(": ")
        raise Malformed(field or None, message or str(error)) from error


class HumanEval(Adapter):
    name = "humaneval"
    description = "task_id, prompt, canonical_solution, test, entry_point"
    fields = ("task_id", "prompt", "canonical_solution", "test", "entry_point")

    def detect(self, record: dict[str, Any]) -> bool:
        return {"prompt", "canonical_solution", "test", "entry_point"} <= record.keys()

    def convert(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        fields = Fields(record)
        prompt = fields.text("prompt", required=True)
        solution = fields.text("canonical_solution")
        tests = _spec(
            from_humaneval,
            {"entry_point": fields.get("entry_point"), "test": fields.get("test"), "prompt": prompt},
        )
        return [
            dict(
                problem=prompt,
                response=fenced(prompt + solution) if solution else None,
                tests=tests,
                meta=fields.unused(),
            )
        ]


class MBPP(Adapter):
    name = "mbpp"
    description = "text/prompt, code, test_list (+ test_setup_code, MBPP sanitized's test_imports)"
    fields = ("text", "prompt", "code", "test_list", "test_imports", "test_setup_code")

    def detect(self, record: dict[str, Any]) -> bool:
        return "test_list" in record and any(k in record for k in ("text", "prompt"))

    def convert(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        fields = Fields(record)
        problem = fields.any_text("text", "prompt", required=True)
        code = fields.text("code")
        # MBPP sanitized ships `test_imports` (`import math`) that must run before its asserts.
        imports = fields.get("test_imports") or []
        if isinstance(imports, str):
            imports = [imports]
        setup = "\n".join([*imports, fields.get("test_setup_code") or ""]).strip()
        tests = _spec(
            from_mbpp, {"test_list": fields.get("test_list"), "test_setup_code": setup, "code": code}
        )
        return [
            dict(problem=problem, response=fenced(code) if code else None, tests=tests, meta=fields.unused())
        ]


class LeetCode(Adapter):
    name = "leetcode"
    description = "LeetCode-style: entry_point `Solution().method`, test with check(candidate)"
    fields = ("entry_point", "test", "query", "problem_description")

    def detect(self, record: dict[str, Any]) -> bool:
        return "Solution()" in str(record.get("entry_point", "")) and "test" in record

    def convert(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        fields = Fields(record)
        problem = fields.any_text("problem_description", "query", "question", "prompt", required=True)
        response = fields.any_text("response")
        if response is None:
            completion = fields.any_text("completion", "solution")
            response = fenced(completion) if completion else None
        tests = _spec(
            from_leetcode, {k: fields.get(k) for k in ("entry_point", "test", "prompt") if k in record}
        )
        return [dict(problem=problem, response=response, tests=tests, meta=fields.unused())]


def _json_field(fields: Fields, key: str) -> Any:
    value = fields.get(key)
    if isinstance(value, str):
        try:
            return json.loads(value) if value.strip() else None
        except ValueError as error:
            raise Malformed(key, f"not valid JSON: {error}") from error
    return value


class APPS(Adapter):
    name = "apps"
    description = "APPS/TACO: question, solutions (JSON list), input_output (JSON; fn_name for call-based)"
    fields = ("question", "solutions", "input_output", "starter_code")

    def detect(self, record: dict[str, Any]) -> bool:
        return "input_output" in record and any(k in record for k in ("question", "problem"))

    def convert(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        fields = Fields(record)
        problem = fields.any_text("question", "problem", required=True)
        starter = fields.text("starter_code") if "starter_code" in record else None
        if starter and starter.strip():
            problem = f"{problem}\n\n{fenced(starter)}"
        tests = _spec(from_apps, {"input_output": _json_field(fields, "input_output")})
        solutions = _json_field(fields, "solutions") if "solutions" in record else None
        meta = fields.unused()
        if not solutions:
            return [dict(problem=problem, tests=tests, meta=meta)]
        if not isinstance(solutions, list) or not all(isinstance(s, str) for s in solutions):
            raise Malformed("solutions", "expected a list of code strings")
        return [
            dict(problem=problem, response=fenced(code), tests=tests, meta={**meta, "solution_index": i})
            for i, code in enumerate(solutions)
        ]


class StdinTests(Adapter):
    name = "stdin_tests"
    description = "Codeforces/CodeContests: problem + tests [{input, output}] (+ optional solution)"
    fields = ("problem", "question", "tests", "test_cases")

    def detect(self, record: dict[str, Any]) -> bool:
        tests = record.get("tests", record.get("test_cases"))
        return (
            any(k in record for k in ("problem", "question", "description"))
            and isinstance(tests, list)
            and bool(tests)
            and isinstance(tests[0], dict)
            and "input" in tests[0]
        )

    def convert(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        fields = Fields(record)
        problem = fields.any_text("problem", "question", "description", required=True)
        key = fields.first_key("tests", "test_cases") or "tests"
        tests = _spec(from_codeforces, {"tests": fields.get(key)})
        response = fields.any_text("response")
        if response is None and isinstance(record.get("solution"), str):
            response = fenced(fields.text("solution"))
        return [dict(problem=problem, response=response, tests=tests, meta=fields.unused())]
