"""Sample problems and helpers shared by the code-verification tests."""

from __future__ import annotations

import json
import os
import time

ADD_ASSERT = {
    "kind": "assert",
    "entry_point": "add",
    "code": "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n",
}
ADD_CALL = {
    "kind": "call",
    "fn_name": "add",
    "cases": [{"args": [2, 3], "expected": 5}, {"args": [-1, 1], "expected": 0}],
}
ADD_PYTEST = {
    "kind": "pytest",
    "code": "from solution import add\n\n\ndef test_small():\n    assert add(2, 3) == 5\n\n\n"
    "class TestAdd:\n    def test_negative(self):\n        assert add(-1, 1) == 0\n",
}
ADD_CODE = "def add(a, b):\n    return a + b\n"
# stdin: print a + b, then a + b + 1 (two lines, so that printing only the first line is wrong)
ADD_STDIN = {
    "kind": "stdin",
    "cases": [{"input": "2 3\n", "output": "5\n6\n"}, {"input": "-1 1\n", "output": "0\n1\n"}],
}
ADD_PROGRAM = "a, b = map(int, input().split())\nprint(a + b)\nprint(a + b + 1)\n"


def cases(verdict) -> list[dict]:
    return json.loads(verdict.detail)["cases"]


def assert_pool_alive(pool) -> None:
    """The pool still verifies a correct sample after whatever the previous one did."""
    verdict = pool.check(ADD_ASSERT, code=ADD_CODE)
    assert verdict.status == "pass", verdict.detail
    verdict = pool.check(ADD_STDIN, code=ADD_PROGRAM)
    assert verdict.status == "pass", verdict.detail


def survivors(token: str) -> list[int]:
    """Host processes whose name is `token` (what a run names the processes it wants to keep)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as handle:
                    if handle.read().strip() == token:
                        found.append(int(entry))
            except OSError:
                continue
    return found


def assert_none_survive(token: str) -> None:
    deadline = time.monotonic() + 3
    while survivors(token) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert survivors(token) == []
