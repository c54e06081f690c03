"""Conversion of the public code-test formats to distillery's test spec (DESIGN section 4).

  stdin:  {"kind": "stdin",  "cases": [{"input": str, "output": str}]}
  call:   {"kind": "call",   "fn_name": str, "cases": [{"args": list, "expected": any}]}
  assert: {"kind": "assert", "entry_point": str, "code": "def check(candidate): ..."}

Each function takes the dataset's own fields and raises ValueError naming the field it could not use.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any


def _text(value: Any, field: str) -> str:
    if isinstance(value, list):  # APPS sometimes stores stdin as a list of lines
        value = "\n".join(str(v) for v in value)
    if not isinstance(value, str):
        raise ValueError(f"{field}: expected a string, got {type(value).__name__}")
    return value


def stdin_spec(cases: Any, field: str = "tests") -> dict[str, Any]:
    """[{input, output}] (Codeforces, CodeContests) as a stdin spec."""
    if not isinstance(cases, list) or not cases:
        raise ValueError(f"{field}: expected a non-empty list of {{input, output}} cases")
    converted = []
    for i, case in enumerate(cases):
        if not isinstance(case, dict):
            raise ValueError(f"{field}[{i}]: expected an object with input and output")
        stdin = case.get("input", case.get("stdin"))
        stdout = case.get("output", case.get("stdout", case.get("expected_output")))
        converted.append(
            {"input": _text(stdin, f"{field}[{i}].input"), "output": _text(stdout, f"{field}[{i}].output")}
        )
    return {"kind": "stdin", "cases": converted}


def _unwrap(expected: Any) -> Any:
    # APPS/TACO wrap a function's return value in a one-element list: outputs = [[3]] for `return 3`.
    return expected[0] if isinstance(expected, list) and len(expected) == 1 else expected


def apps_spec(io: Any, field: str = "input_output") -> dict[str, Any]:
    """APPS/TACO `input_output` ({inputs, outputs, fn_name?}): call spec with fn_name, else stdin."""
    if not isinstance(io, dict) or "inputs" not in io or "outputs" not in io:
        raise ValueError(f"{field}: expected an object with inputs and outputs")
    inputs, outputs = io["inputs"], io["outputs"]
    if (
        not isinstance(inputs, list)
        or not isinstance(outputs, list)
        or len(inputs) != len(outputs)
        or not inputs
    ):
        raise ValueError(f"{field}: inputs and outputs must be non-empty lists of the same length")
    fn_name = io.get("fn_name")
    if fn_name:
        cases = [
            {"args": args if isinstance(args, list) else [args], "expected": _unwrap(out)}
            for args, out in zip(inputs, outputs, strict=True)
        ]
        return {"kind": "call", "fn_name": str(fn_name), "cases": cases}
    return stdin_spec([{"input": i, "output": o} for i, o in zip(inputs, outputs, strict=True)], field)


def humaneval_spec(entry_point: Any, test: Any) -> dict[str, Any]:
    """HumanEval's `test` already defines check(candidate)."""
    if not isinstance(entry_point, str) or not entry_point.strip():
        raise ValueError("entry_point: expected a function name")
    test = _text(test, "test")
    if "def check(" not in test:
        raise ValueError("test: expected a `def check(candidate)` function")
    return {"kind": "assert", "entry_point": entry_point.strip(), "code": test}


_CALLED = re.compile(r"assert\s+(?:not\s+)?\(?\s*(?:math\.isclose\()?\s*(?:set\()?([A-Za-z_]\w*)\s*\(")


def mbpp_spec(test_list: Any, setup: str | None = None, code: str | None = None) -> dict[str, Any]:
    """MBPP asserts call the function by name; they become the body of check(candidate)."""
    if not isinstance(test_list, list) or not test_list or not all(isinstance(t, str) for t in test_list):
        raise ValueError("test_list: expected a non-empty list of assert statements")
    called = [m.group(1) for t in test_list if (m := _CALLED.search(t))]
    defined = set(re.findall(r"^def\s+(\w+)\s*\(", code or "", re.MULTILINE))
    entry = next((name for name in called if name in defined), called[0] if called else None)
    if entry is None:
        raise ValueError("test_list: cannot tell which function the asserts call")
    body = textwrap.indent("\n".join(test_list), "    ")
    check = f"{setup.rstrip()}\n\n" if setup and setup.strip() else ""
    return {"kind": "assert", "entry_point": entry, "code": f"{check}def check(candidate):\n{body}\n"}


def leetcode_spec(entry_point: Any, test: Any) -> dict[str, Any]:
    """LeetCode-style: entry point `Solution().method`, a check(candidate) function."""
    return humaneval_spec(entry_point, test)


def spec_from_test_case(value: Any) -> dict[str, Any]:
    """Whatever a mixed dataset put in its test field (AM-Distilled's `test_case`, for instance)."""
    if isinstance(value, dict) and value.get("kind") in ("stdin", "call", "assert"):
        return value
    if isinstance(value, dict) and "inputs" in value:
        return apps_spec(value, "test_case")
    if isinstance(value, list):
        return stdin_spec(value, "test_case")
    raise ValueError(
        "test_case: not a test format distillery knows (stdin cases, APPS input_output, or a spec)"
    )
