"""Published code-test layouts turned into distillery test specs (DESIGN section 4).

One function, `spec_from_published`, recognises the shapes the popular datasets ship:

    [{"input", "output"}]                         Codeforces / rllm stdin cases
    [{"input", "output", "testtype"}]             LiveCodeBench (stdin or functional)
    [{"input", "output", "type", "fn_name"}]      PrimeIntellect verification_info test_cases
    {"inputs", "outputs", "fn_name"?}             APPS / TACO input_output
    {"functional": "def check(candidate): ..."}   rllm / DeepCoder LeetCode
    {"call_type", "fn_name", "assert_case"}       AM-DeepSeek-R1-Distilled
    {"kind": ...}                                 already a distillery spec

plus the helpers they need (LiveCodeBench's compressed private tests, JSON-in-a-string fields).
Every function raises SpecError (a ValueError) naming the field when a layout cannot be used.
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import re
import zlib
from collections.abc import Mapping
from typing import Any

from curate.verify.code.specs import LEETCODE_PRELUDE, SpecError, from_apps, from_mbpp, parse_spec

CHECK_CALL = re.compile(r"^\s*check\((?P<entry>[^()]*(?:\(\))?[^()]*)\)\s*$", re.MULTILINE)


def json_value(value: Any, field: str) -> Any:
    """A field that datasets store either as JSON text or as the value itself."""
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            return json.loads(value)
        except ValueError as error:
            raise SpecError(f"{field}: not JSON ({error})") from None
    return value


class _PlainUnpickler(pickle.Unpickler):
    """Unpickles plain data only: a pickle from a dataset must not name (and so run) any code."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a dataset pickle")


def decode_compressed_json(text: str, field: str) -> Any:
    """LiveCodeBench's private tests: JSON text, or base64 of zlib of a pickled JSON string."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        unpacked = _PlainUnpickler(io.BytesIO(zlib.decompress(base64.b64decode(text)))).load()
    except (ValueError, zlib.error, pickle.UnpicklingError, EOFError) as error:
        raise SpecError(f"{field}: neither JSON nor base64+zlib+pickle ({error})") from None
    return json.loads(unpacked) if isinstance(unpacked, str | bytes) else unpacked


def _functional_args(text: Any, field: str) -> list:
    """LiveCodeBench functional input: one JSON value per line, one line per argument."""
    if isinstance(text, list):
        return text
    if not isinstance(text, str):
        raise SpecError(f"{field}: expected text, got {type(text).__name__}")
    try:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError as error:
        raise SpecError(f"{field}: an argument line is not JSON ({error})") from None


def _case_list(cases: list, fn_name: str | None) -> dict:
    """A list of {input, output} cases, each maybe typed (`testtype`/`type`), as one spec."""
    if not cases:
        raise SpecError("tests: empty")
    functional = []
    for number, case in enumerate(cases):
        if not isinstance(case, Mapping) or "input" not in case or "output" not in case:
            raise SpecError(f"tests[{number}]: expected an object with input and output")
        kind = str(case.get("testtype") or case.get("type") or "stdin").lower()
        functional.append(kind in ("functional", "function_call", "call"))
    if any(functional) and not all(functional):
        raise SpecError("tests: mixes stdin and functional cases")
    if not functional[0]:
        return from_apps(
            {"input_output": {"inputs": [c["input"] for c in cases], "outputs": [c["output"] for c in cases]}}
        )
    name = fn_name or next((c["fn_name"] for c in cases if isinstance(c.get("fn_name"), str)), None)
    if not name:
        raise SpecError("fn_name: missing for functional tests (metadata.func_name)")
    if "testtype" in cases[0]:  # LiveCodeBench: arguments one per line, the output one JSON value
        calls = []
        for number, case in enumerate(cases):
            args = _functional_args(case["input"], f"tests[{number}].input")
            calls.append({"args": args, "expected": json_value(case["output"], f"tests[{number}].output")})
        # Its functional problems are LeetCode's: `class Solution` with `List[int]` annotations.
        return parse_spec({"kind": "call", "fn_name": name, "cases": calls, "prelude": LEETCODE_PRELUDE})
    inputs = [c["input"] if isinstance(c["input"], list) else [c["input"]] for c in cases]
    return from_apps(
        {"input_output": {"inputs": inputs, "outputs": [c["output"] for c in cases], "fn_name": name}}
    )


def _functional_check(code: str) -> dict:
    """rllm's LeetCode tests: `def check(candidate): ...` then `check(Solution().method)`."""
    calls = list(CHECK_CALL.finditer(code))
    if not calls:
        raise SpecError("tests.functional: no check(...) call naming the entry point")
    entry = calls[-1].group("entry").strip()
    body = CHECK_CALL.sub("", code).rstrip() + "\n"
    return parse_spec({"kind": "assert", "entry_point": entry, "code": body})


def _am_test_case(value: Mapping) -> dict:
    """AM's `{call_type, fn_name, assert_case}`: assert lines calling fn_name, or stdin cases."""
    call_type = str(value.get("call_type") or "").lower()
    if call_type == "assert":
        lines = value.get("assert_case")
        if isinstance(lines, str):
            lines = [lines]
        if not isinstance(lines, list) or not lines or not all(isinstance(line, str) for line in lines):
            raise SpecError("test_case.assert_case: expected a list of assert lines")
        name = value.get("fn_name")
        if not isinstance(name, str) or not name:  # the function the asserts call, as for MBPP
            return from_mbpp({"test_list": lines})
        return parse_spec({"kind": "assert", "entry_point": name, "code": "\n".join(lines)})
    keys = ("inputs", "outputs") if "inputs" in value else ("input", "output")
    if call_type in ("std", "stdin") and keys[0] in value and keys[1] in value:
        inputs, outputs = value[keys[0]], value[keys[1]]
        if isinstance(inputs, str):
            inputs, outputs = [inputs], [outputs]
        return from_apps({"input_output": {"inputs": inputs, "outputs": outputs}})
    raise SpecError(f"test_case.call_type: {value.get('call_type')!r} with fields {', '.join(sorted(value))}")


def spec_from_published(value: Any, fn_name: str | None = None) -> dict:
    """The spec for one published test layout (the value itself or its JSON text)."""
    value = json_value(value, "tests")
    if value is None:
        raise SpecError("tests: missing")
    if isinstance(value, list):
        return _case_list(value, fn_name)
    if not isinstance(value, Mapping):
        raise SpecError(f"tests: expected a list or an object, got {type(value).__name__}")
    if "kind" in value:
        return parse_spec(value)
    if isinstance(value.get("functional"), str):
        return _functional_check(value["functional"])
    if "call_type" in value:
        return _am_test_case(value)
    if "test_cases" in value:  # PrimeIntellect verification_info
        return _case_list(json_value(value["test_cases"], "test_cases") or [], fn_name)
    if (
        "input" in value and "output" in value and isinstance(value["input"], list)
    ):  # {input: [..], output: [..]}
        value = {"inputs": value["input"], "outputs": value["output"], "fn_name": value.get("fn_name")}
    if "inputs" in value and "outputs" in value:
        data = dict(value)
        if fn_name and not data.get("fn_name"):
            data["fn_name"] = fn_name
        return from_apps({"input_output": data})
    raise SpecError(
        f"tests: an object with fields {', '.join(sorted(value)) or '(none)'}: not a known test layout"
    )


def spec_text(spec: dict) -> str:
    return json.dumps(spec, ensure_ascii=False)
