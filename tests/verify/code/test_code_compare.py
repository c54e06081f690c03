"""The supervisor's comparisons and the value encoding between runner and supervisor (pure functions)."""

from __future__ import annotations

import math

import pytest

from curate.verify.code.inside.compare import compare_output, same_value
from curate.verify.code.inside.framing import ProtocolError
from curate.verify.code.inside.values import decode, encode


def test_outputs_compare_line_by_line_ignoring_spacing_and_trailing_blank_lines():
    assert compare_output("1 2\n3\n", "1 2\n3") is None
    assert compare_output("1   2  \r\n3\n\n\n", "1 2\n3\n") is None
    assert compare_output("1\n2\n", "1\n2\n3\n") == "expected 3 lines, got 2"
    assert compare_output("1\n2\n3\n4\n", "1\n2\n3\n") == "expected 3 lines, got 4"
    assert compare_output("1 2 3", "1\n2\n3") == "expected 3 lines, got 1"  # same tokens, other lines
    assert compare_output("YES\n", "NO\n") == "line 1: expected 'NO', got 'YES'"


def test_float_tolerance_only_when_asked():
    assert compare_output("0.3333333\n", "0.333333333\n") is not None
    assert compare_output("0.3333333\n", "0.333333333\n", tolerance=1e-6) is None
    assert compare_output("0.4\n", "0.333333333\n", tolerance=1e-6) is not None
    assert compare_output("abc 1.0\n", "abd 1.0\n", tolerance=1e-6) is not None


def test_values_compare_with_exact_types():
    assert same_value(5, 5, 1e-9)
    assert not same_value(True, 1, 1e-9)  # bool is not int
    assert not same_value(1, True, 1e-9)
    assert not same_value("5", 5, 1e-9)
    assert not same_value(5.0, 5, 1e-9)  # an int answer must be an int
    assert same_value(5, 5.0, 1e-9)  # JSON cannot tell 5.0 from 5 in a float answer
    assert same_value(0.1 + 0.2, 0.3, 1e-9)
    assert same_value((1, [2, 3]), [1, [2, 3]], 1e-9)  # JSON has no tuples
    assert not same_value([1, 2], [1, 2, 3], 1e-9)
    assert same_value({"a": [1]}, {"a": [1]}, 1e-9)
    assert not same_value({"a": 1, "b": 2}, {"a": 1}, 1e-9)
    assert not same_value(None, [], 1e-9)


def test_values_that_are_not_exactly_builtin_stay_behind_as_references():
    class LyingInt(int):
        def __eq__(self, other):
            return True

        __hash__ = int.__hash__

    class AlwaysEqual:
        def __eq__(self, other):
            return True

    refs: list = []
    data = encode([LyingInt(3), AlwaysEqual(), 4, (5, "x"), {1: {2.5}}, b"\x00", 1j, None, True], refs)
    assert [type(r).__name__ for r in refs] == ["LyingInt", "AlwaysEqual"]
    made = []

    def make_ref(number, type_name):
        made.append((number, type_name))
        return f"<ref {number}>"

    value = decode(data, make_ref)
    assert value == ["<ref 0>", "<ref 1>", 4, (5, "x"), {1: {2.5}}, b"\x00", 1j, None, True]
    assert made == [(0, "LyingInt"), (1, "AlwaysEqual")]
    assert type(value[3]) is tuple and type(value[4][1]) is set


def test_decode_refuses_what_encode_never_sends():
    for bad in (
        {"tuple": [1], "extra": 1},
        {"eval": "1"},
        {"set": [[1]]},
        {"ref": ["0", "x"]},
        {"dict": [[1]]},
    ):
        with pytest.raises(ProtocolError):
            decode(bad, lambda n, t: None)
    deep: list = []
    for _ in range(200):
        deep = [deep]
    with pytest.raises(ProtocolError):
        decode(deep, lambda n, t: None)


def test_special_floats_round_trip():
    value = decode(encode([math.inf, -math.inf], []), lambda n, t: None)
    assert value == [math.inf, -math.inf]
