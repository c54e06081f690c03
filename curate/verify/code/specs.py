"""Code test specs (DESIGN section 4): validation, and converters from the common dataset formats.

    {"kind": "stdin",  "cases": [{"input": "...", "output": "..."}]}
    {"kind": "call",   "fn_name": "f", "cases": [{"args": [...], "expected": ...}]}
    {"kind": "assert", "entry_point": "f", "code": "def check(candidate): ..."}
    {"kind": "pytest", "code": "from solution import f\n\ndef test_f(): ..."}

Optional everywhere: `time_limit_s` (per stdin/call case; for assert the whole test), `memory_mb`,
`float_tol` (numbers in outputs or return values may differ by this much, relative or absolute),
`prelude` (trusted code run before the solution, and before an assert test in the test's own
namespace: HumanEval's prompt, a judge's import prelude).

stdin tests may also name a `language` (python, cpp, java, javascript), a `compare` (lines or
tokens), a `checker` (a trusted Python `check(input, expected, output)`, or a judge program) and an
`interactor` (a judge program; the problem is then `interactive`): judge programs follow testlib's
convention, see judges.py.

An assert test's `code` runs with the solution's names available; if it defines `check`, that is
called with the entry point. `entry_point` may be `f`, `Solution().method` or `Class.method`; an
entry point on `Solution` (assert or call) always gets LEETCODE_PRELUDE, before any prelude of
its own, as LeetCode's judge does.

A pytest test's `code` is a test module as KodCode writes them: the solution is importable as
module `solution`; every top-level `test*` function and `test*` method of a `Test*` class is run
(`pytest.raises`, `approx`, `mark.parametrize` and the module's own fixtures work; pytest's
fixtures do not). The sample passes when every test passes and at least one ran.

Every converter is a pure function of one dataset record (a dict) and returns a spec dict; a
record it cannot convert raises SpecError (a ValueError) naming the field.
"""

from __future__ import annotations

import ast
import builtins
import functools
import json
import re
from collections.abc import Mapping

from curate.verify.code import judges, languages

KINDS = ("stdin", "call", "assert", "pytest")
COMPARES = ("lines", "tokens")
ENTRY_POINT = re.compile(r"^[A-Za-z_]\w*(\(\))?(\.[A-Za-z_]\w*)*$")
MAX_TIME_LIMIT_S = 300.0

# What LeetCode-style judges put in scope before a solution. Star imports as those judges do, with
# typing first so that collections' Counter/deque win; math and operator by name only, because
# their star imports would replace the builtin pow/abs.
LEETCODE_PRELUDE = """\
import bisect, collections, copy, datetime, functools, heapq, itertools, math, operator, random, re, string, sys
from typing import *
from bisect import *
from collections import *
from functools import *
from heapq import *
from itertools import *
from string import *
from math import ceil, comb, factorial, floor, gcd, inf, isqrt, lcm, log, log2, log10, perm, prod, sqrt
"""


class SpecError(ValueError):
    """A test spec (or dataset record) that cannot be used; the message names the field."""


def _require(record: Mapping, field: str, kind: type | tuple[type, ...]) -> object:
    if field not in record or record[field] is None:
        raise SpecError(f"{field}: missing")
    value = record[field]
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise SpecError(f"{field}: expected {names}, got {type(value).__name__}")
    return value


@functools.lru_cache(maxsize=1024)
def _syntax_error(source: str) -> str | None:
    """Why `source` does not parse, or None. Cached: a dataset repeats each problem's tests per sample."""
    try:
        ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        return str(error)
    return None


@functools.lru_cache(maxsize=1024)
def _has_tests(source: str) -> bool:
    """Whether a pytest module defines a test, by the names pytest collects."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
            return True
        if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            if any(isinstance(item, ast.FunctionDef) and item.name.startswith("test") for item in node.body):
                return True
    return False


def _python(source: str, field: str) -> None:
    error = _syntax_error(source)
    if error is not None:
        raise SpecError(f"{field}: not valid Python ({error})")


def _number(spec: Mapping, field: str, low: float, high: float) -> None:
    if field in spec and spec[field] is not None:
        value = spec[field]
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise SpecError(f"{field}: expected a number in [{low}, {high}], got {value!r}")


def parse_spec(tests: str | Mapping | None, *, check_python: bool = True) -> dict:
    """The validated spec as a dict. Accepts the JSON text of the `tests` column or a parsed dict.

    check_python=False leaves the syntax of an assert test's code and of an assert or pytest
    prelude unchecked: the verifier does so, because its supervisor compiles them anyway (and
    reports code that does not compile as `invalid_reference`); parsing them here too would
    double that cost per problem."""
    if tests is None or (isinstance(tests, str) and not tests.strip()):
        raise SpecError("tests: missing")
    if isinstance(tests, str):
        try:
            tests = json.loads(tests)
        except ValueError as error:
            raise SpecError(f"tests: not JSON ({error})") from None
    if not isinstance(tests, Mapping):
        raise SpecError(f"tests: expected a JSON object, got {type(tests).__name__}")
    spec = dict(tests)
    kind = spec.get("kind")
    if kind not in KINDS:
        raise SpecError(f"kind: expected one of {KINDS}, got {kind!r}")
    if kind == "assert":
        entry = _require(spec, "entry_point", str)
        if not ENTRY_POINT.match(entry):
            raise SpecError(f"entry_point: {entry!r} is not a name, Class.method or Solution().method")
        code = _require(spec, "code", str)
        if check_python:
            _python(code, "code")
    elif kind == "pytest":
        code = _require(spec, "code", str)
        _python(code, "code")
        if not _has_tests(code):
            raise SpecError("code: no test function (a top-level test_* or a Test* class's test_* method)")
    else:
        cases = _require(spec, "cases", list)
        if not cases:
            raise SpecError("cases: empty")
        for number, case in enumerate(cases):
            if not isinstance(case, Mapping):
                raise SpecError(f"cases[{number}]: expected an object")
            if kind == "stdin":
                _require(case, "input", str)
                _require(case, "output", str)
            else:
                _require(case, "args", list)
                if "expected" not in case:
                    raise SpecError(f"cases[{number}].expected: missing")
        if kind == "call":
            name = _require(spec, "fn_name", str)
            if not ENTRY_POINT.match(name):
                raise SpecError(f"fn_name: {name!r} is not a function or method name")
    if spec.get("prelude") is not None:
        prelude = _require(spec, "prelude", str)
        if check_python or kind not in ("assert", "pytest"):  # elsewhere only the runner compiles it
            _python(prelude, "prelude")
    entry = spec.get("entry_point") or spec.get("fn_name") or ""
    if entry.startswith("Solution") and not (spec.get("prelude") or "").startswith(LEETCODE_PRELUDE):
        spec["prelude"] = LEETCODE_PRELUDE + (spec.get("prelude") or "")
    if spec.get("language") is not None:
        name = languages.canonical(_require(spec, "language", str))
        if name not in languages.SUPPORTED:
            raise SpecError(f"language: {spec['language']!r} is not one of {', '.join(languages.SUPPORTED)}")
        spec["language"] = name
    if spec.get("compare") is not None and spec["compare"] not in COMPARES:
        raise SpecError(f"compare: expected one of {COMPARES}, got {spec['compare']!r}")
    for field in ("checker", "interactor"):
        value = spec.get(field)
        if value is None:
            continue
        if kind != "stdin":
            raise SpecError(f"{field}: only stdin tests have one")
        if isinstance(value, str):  # a checker function, or an interactor program
            _python(value, field)
        elif (problem := judges.validate(value, field)) is not None:
            raise SpecError(problem)
        elif "command" not in value and languages.canonical(value["language"]) == "python":
            _python(value["source"], f"{field}.source")
    if spec.get("interactive") is not None:
        _require(spec, "interactive", bool)
    if spec.get("interactor") is not None:
        spec["interactive"] = True
    _number(spec, "total_time_s", 0.01, MAX_TIME_LIMIT_S * 10)
    _number(spec, "time_limit_s", 0.01, MAX_TIME_LIMIT_S)
    _number(spec, "memory_mb", 16, 1 << 20)
    _number(spec, "float_tol", 0, 1)
    return spec


# --- converters --------------------------------------------------------------------------------------------


def from_humaneval(record: Mapping) -> dict:
    """HumanEval / HumanEval+ style: prompt, test (defines check(candidate)), entry_point.

    The prompt is the prelude: its imports and helpers (HumanEval/32's `poly`) are in scope for the
    solution, and the test uses our trusted copy rather than one the solution could redefine."""
    return {
        "kind": "assert",
        "entry_point": _require(record, "entry_point", str),
        "code": _require(record, "test", str),
        "prelude": _require(record, "prompt", str),
    }


def _called_names(source: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    calls = [
        node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    ]
    return [call.func.id for call in sorted(calls, key=lambda c: (c.lineno, c.col_offset))]


def _defined_names(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef)
    }


def from_mbpp(record: Mapping) -> dict:
    """MBPP: text, code (the reference solution), test_list (assert lines), test_setup_code.

    The entry point is the first function the asserts call that the reference defines (or, with no
    reference, the first called name that is not a builtin)."""
    tests = _require(record, "test_list", list)
    if not tests or not all(isinstance(line, str) for line in tests):
        raise SpecError("test_list: expected a non-empty list of assert lines")
    source = "\n".join(tests)
    defined = _defined_names(record["code"]) if isinstance(record.get("code"), str) else set()
    called = [name for name in _called_names(source) if not hasattr(builtins, name)]
    entry = next((name for name in called if name in defined), called[0] if called else None)
    if entry is None:
        raise SpecError("test_list: no function call found in the asserts")
    spec = {"kind": "assert", "entry_point": entry, "code": source}
    setup = record.get("test_setup_code")
    if setup:
        if not isinstance(setup, str):
            raise SpecError("test_setup_code: expected str")
        spec["prelude"] = setup
    return spec


def _text(value: object, field: str) -> str:
    """A stdin/stdout text: APPS sometimes stores it as a list of lines."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(line, str) for line in value):
        return "\n".join(value)
    raise SpecError(f"{field}: expected text or a list of lines, got {type(value).__name__}")


def _input_output(record: Mapping) -> dict:
    raw = record["input_output"]
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as error:
            raise SpecError(f"input_output: not JSON ({error})") from None
    if not isinstance(raw, Mapping):
        raise SpecError("input_output: expected an object with inputs and outputs")
    inputs, outputs = _require(raw, "inputs", list), _require(raw, "outputs", list)
    if len(inputs) != len(outputs) or not inputs:
        raise SpecError(f"input_output: {len(inputs)} inputs for {len(outputs)} outputs")
    return {"inputs": inputs, "outputs": outputs, "fn_name": raw.get("fn_name")}


def from_codeforces(record: Mapping) -> dict:
    """Codeforces/APPS stdin-stdout problems: `tests` as [{input, output}] (rllm, open-r1) or APPS/TACO
    `input_output` JSON with inputs/outputs; with an `fn_name` there, a functional (call) spec."""
    if "tests" in record and record["tests"] is not None:
        tests = _require(record, "tests", list)
        if not tests:
            raise SpecError("tests: empty")
        cases = []
        for number, test in enumerate(tests):
            if not isinstance(test, Mapping):
                raise SpecError(f"tests[{number}]: expected an object with input and output")
            cases.append({"input": _text(test.get("input"), f"tests[{number}].input"),
                          "output": _text(test.get("output"), f"tests[{number}].output")})  # fmt: skip
        return {"kind": "stdin", "cases": cases, **_judge_limits(record)}
    if "input_output" not in record:
        raise SpecError("tests: missing (nor input_output)")
    data = _input_output(record)
    if data["fn_name"]:
        return _functional(data)
    cases = [
        {"input": _text(i, f"input_output.inputs[{n}]"), "output": _text(o, f"input_output.outputs[{n}]")}
        for n, (i, o) in enumerate(zip(data["inputs"], data["outputs"], strict=True))
    ]
    return {"kind": "stdin", "cases": cases}


from_apps = from_codeforces


def _judge_limits(record: Mapping) -> dict:
    """Codeforces-style `time_limit` (seconds), `memory_limit` (MB) and interaction as spec fields."""
    extra: dict = {}
    for field, key, kind in (("time_limit", "time_limit_s", float), ("memory_limit", "memory_mb", int)):
        value = record.get(field)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            extra[key] = kind(value)
    if record.get("interaction_format") or record.get("interactive") is True:
        extra["interactive"] = True
    return extra


def _functional(data: dict) -> dict:
    """APPS/TACO call-based tests. Their outputs are conventionally wrapped in a one-element list
    (`[[3], [5]]` for returns 3 and 5): when every output is, the wrapper is removed."""
    name = data["fn_name"]
    if not isinstance(name, str) or not ENTRY_POINT.match(name):
        raise SpecError(f"input_output.fn_name: {name!r} is not a function name")
    outputs = data["outputs"]
    if all(isinstance(output, list) and len(output) == 1 for output in outputs):
        outputs = [output[0] for output in outputs]
    cases = []
    for number, (args, expected) in enumerate(zip(data["inputs"], outputs, strict=True)):
        if not isinstance(args, list):
            raise SpecError(f"input_output.inputs[{number}]: expected the list of arguments")
        cases.append({"args": args, "expected": expected})
    return {"kind": "call", "fn_name": name, "cases": cases, "prelude": LEETCODE_PRELUDE}


def from_leetcode(record: Mapping) -> dict:
    """LeetCode-style functional problems with `class Solution`.

    - LeetCodeDataset style: entry_point (`Solution().maxArea`), test (`def check(candidate)`),
      optional prompt (its import prelude and ListNode/TreeNode helpers, run after ours);
    - TACO/APPS style: input_output JSON with fn_name (`maxArea`, looked up on `Solution()` when the
      solution has no such function)."""
    if record.get("test") is not None:
        spec = {
            "kind": "assert",
            "entry_point": _require(record, "entry_point", str),
            "code": _require(record, "test", str),
        }
        if isinstance(record.get("prompt"), str):  # the dataset's own helpers (ListNode, TreeNode)
            spec["prelude"] = record["prompt"]
        if not ENTRY_POINT.match(spec["entry_point"]):
            raise SpecError(f"entry_point: {spec['entry_point']!r} is not a name or Solution().method")
        return spec
    if "input_output" not in record:
        raise SpecError("test: missing (nor input_output with fn_name)")
    data = _input_output(record)
    if not data["fn_name"]:
        raise SpecError("input_output.fn_name: missing (a stdin problem: use from_codeforces)")
    return _functional(data)


CONVERTERS = {
    "humaneval": from_humaneval,
    "mbpp": from_mbpp,
    "codeforces": from_codeforces,
    "apps": from_apps,
    "leetcode": from_leetcode,
    "taco": from_apps,
}


def solution_import(source: str) -> str | None:
    """The first name a pytest module imports from `solution` (what the response must define)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "solution" and node.names[0].name != "*":
            return node.names[0].name
    return None
