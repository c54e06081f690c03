"""Test specs: validation, and the converters from HumanEval, MBPP, Codeforces/APPS, LeetCode/TACO."""

from __future__ import annotations

import json

import pytest

from curate.verify.code.specs import (
    LEETCODE_PRELUDE,
    SpecError,
    from_apps,
    from_codeforces,
    from_humaneval,
    from_leetcode,
    from_mbpp,
    parse_spec,
)


def test_parse_spec_accepts_the_four_kinds_as_text_or_dict():
    stdin = {"kind": "stdin", "cases": [{"input": "1\n", "output": "2\n"}], "time_limit_s": 2}
    assert parse_spec(json.dumps(stdin)) == stdin
    call = {"kind": "call", "fn_name": "f", "cases": [{"args": [1], "expected": [1, 2]}], "memory_mb": 512}
    assert parse_spec(call) == call
    check = {"kind": "assert", "entry_point": "two_sum", "code": "def check(c):\n    assert c(1)\n"}
    assert parse_spec(check) == check
    tests = {"kind": "pytest", "code": "from solution import f\n\ndef test_f():\n    assert f()\n"}
    assert parse_spec(json.dumps(tests)) == tests


@pytest.mark.parametrize(
    ("tests", "field"),
    [
        ("{not json", "tests"),
        ("[1, 2]", "tests"),
        ({"kind": "unit"}, "kind"),
        ({"kind": "stdin", "cases": []}, "cases"),
        ({"kind": "stdin", "cases": [{"input": "1"}]}, "output"),
        ({"kind": "call", "fn_name": "f", "cases": [{"args": 1, "expected": 1}]}, "args"),
        ({"kind": "call", "fn_name": "f", "cases": [{"args": []}]}, "cases[0].expected"),
        ({"kind": "call", "fn_name": "f; import os", "cases": [{"args": [], "expected": 1}]}, "fn_name"),
        ({"kind": "assert", "entry_point": "f", "code": "def check(:"}, "code"),
        ({"kind": "assert", "code": "pass"}, "entry_point"),
        ({"kind": "assert", "entry_point": "f", "code": "pass", "time_limit_s": -1}, "time_limit_s"),
        ({"kind": "assert", "entry_point": "f", "code": "pass", "memory_mb": "lots"}, "memory_mb"),
        ({"kind": "assert", "entry_point": "f", "code": "pass", "prelude": "import"}, "prelude"),
    ],
)
def test_parse_spec_names_the_bad_field(tests, field):
    with pytest.raises(SpecError, match=field.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        parse_spec(tests)


def test_humaneval_record():
    record = {
        "task_id": "HumanEval/0",
        "prompt": "def add(a, b):\n    '''add'''\n",
        "entry_point": "add",
        "canonical_solution": "    return a + b\n",
        "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n",
    }
    spec = from_humaneval(record)
    assert spec == {
        "kind": "assert",
        "entry_point": "add",
        "code": record["test"],
        "prelude": record["prompt"],
    }
    assert parse_spec(spec) == spec
    with pytest.raises(SpecError, match="entry_point"):
        from_humaneval({**record, "entry_point": None})


def test_mbpp_record_finds_the_entry_point_and_keeps_setup_code():
    record = {
        "text": "Remove first and last occurrence of a character.",
        "code": "def remove_Occ(s, ch):\n    return s.replace(ch, '', 1)[::-1].replace(ch, '', 1)[::-1]\n",
        "test_list": [
            'assert remove_Occ("hello","l") == "heo"',
            'assert len(remove_Occ("abcda","a")) == 3',
        ],
        "test_setup_code": "import math",
    }
    spec = from_mbpp(record)
    assert spec["entry_point"] == "remove_Occ"  # not `len`, a builtin
    assert spec["code"] == "\n".join(record["test_list"])
    assert spec["prelude"] == "import math"
    with pytest.raises(SpecError, match="test_list"):
        from_mbpp({**record, "test_list": []})


def test_codeforces_tests_list():
    record = {
        "problem": "...",
        "tests": [{"input": "1 2\n", "output": "3\n"}, {"input": ["4 5"], "output": ["9"]}],
    }
    assert from_codeforces(record) == {
        "kind": "stdin",
        "cases": [{"input": "1 2\n", "output": "3\n"}, {"input": "4 5", "output": "9"}],
    }
    with pytest.raises(SpecError, match=r"tests\[0\]\.output"):
        from_codeforces({"tests": [{"input": "1", "output": 3}]})


def test_apps_input_output_stdin_and_functional():
    stdin = {"input_output": json.dumps({"inputs": ["1\n", "2\n"], "outputs": ["1\n", "4\n"]})}
    assert from_apps(stdin) == {
        "kind": "stdin",
        "cases": [{"input": "1\n", "output": "1\n"}, {"input": "2\n", "output": "4\n"}],
    }
    functional = {"input_output": {"fn_name": "square", "inputs": [[2], [3]], "outputs": [[4], [9]]}}
    spec = from_apps(functional)
    assert spec["kind"] == "call" and spec["fn_name"] == "square"
    assert spec["cases"] == [{"args": [2], "expected": 4}, {"args": [3], "expected": 9}]  # [x] unwrapped
    unwrapped = {"input_output": {"fn_name": "pair", "inputs": [[1]], "outputs": [[1, 2]]}}
    assert from_apps(unwrapped)["cases"] == [{"args": [1], "expected": [1, 2]}]  # not all wrapped: kept
    with pytest.raises(SpecError, match="input_output"):
        from_apps({"input_output": {"inputs": ["1"], "outputs": []}})


def test_leetcode_dataset_and_taco_functional():
    record = {
        "entry_point": "Solution().maxArea",
        "test": "def check(candidate):\n    assert candidate(height=[1, 1]) == 1\n",
    }
    spec = from_leetcode(record)
    assert spec == {"kind": "assert", "entry_point": "Solution().maxArea", "code": record["test"]}
    assert parse_spec(spec)["prelude"] == LEETCODE_PRELUDE
    with_prompt = from_leetcode({**record, "prompt": "class ListNode: ...\n"})
    assert parse_spec(with_prompt)["prelude"] == LEETCODE_PRELUDE + "class ListNode: ...\n"
    taco = {"input_output": json.dumps({"fn_name": "maxArea", "inputs": [[[1, 1]]], "outputs": [[1]]})}
    assert from_leetcode(taco)["cases"] == [{"args": [[1, 1]], "expected": 1}]
    with pytest.raises(SpecError, match="fn_name"):
        from_leetcode({"input_output": {"inputs": ["1"], "outputs": ["1"]}})


def test_leetcode_prelude_has_the_judges_names_and_keeps_builtin_pow():
    scope: dict = {}
    exec(LEETCODE_PRELUDE, scope)
    for name in ("List", "Optional", "Counter", "deque", "defaultdict", "heappush", "bisect_left", "accumulate",
                 "lru_cache", "cache", "ascii_lowercase", "gcd", "inf", "comb", "string", "math"):  # fmt: skip
        assert name in scope, name
    assert scope["Counter"]("aab")["a"] == 2  # collections' Counter, not typing's alias
    assert "pow" not in scope  # the builtin three-argument pow still works


@pytest.mark.parametrize("entry", ["Solution().maxArea", "Solution.maxArea"])
def test_solution_entry_points_get_the_judge_prelude_wherever_the_spec_came_from(entry):
    spec = parse_spec({"kind": "assert", "entry_point": entry, "code": "def check(c):\n    pass\n"})
    assert spec["prelude"] == LEETCODE_PRELUDE
    again = parse_spec(spec)  # parsing a parsed spec does not stack the prelude
    assert again["prelude"] == LEETCODE_PRELUDE
    plain = parse_spec({"kind": "assert", "entry_point": "max_area", "code": "def check(c):\n    pass\n"})
    assert "prelude" not in plain
