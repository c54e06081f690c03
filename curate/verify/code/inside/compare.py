"""Comparisons the supervisor makes: return values with exact types, program outputs line by line."""

from __future__ import annotations

import math


def numbers_close(a: float, b: float, tolerance: float) -> bool:
    return math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance)


def same_value(got: object, expected: object, tolerance: float) -> bool:
    """Equality with exact types: `True` is not `1`, `1` is not `1.0`. Expected values come from JSON,
    so a list also accepts a tuple and a float accepts an int within the tolerance."""
    kind = type(expected)
    if kind is float:
        return type(got) in (float, int) and numbers_close(got, expected, tolerance)
    if kind is list:
        return (
            type(got) in (list, tuple)
            and len(got) == len(expected)
            and all(same_value(a, b, tolerance) for a, b in zip(got, expected, strict=True))
        )
    if kind is dict:
        return (
            type(got) is dict
            and got.keys() == expected.keys()
            and all(same_value(got[key], expected[key], tolerance) for key in expected)
        )
    return type(got) is kind and got == expected


def _output_lines(text: str) -> list[str]:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def _tokens_match(got: list[str], expected: list[str], tolerance: float | None) -> bool:
    if got == expected:
        return True
    if tolerance is None or len(got) != len(expected):
        return False
    for a, b in zip(got, expected, strict=True):
        if a == b:
            continue
        try:
            if not numbers_close(float(a), float(b), tolerance):
                return False
        except ValueError:
            return False
    return True


def compare_output(got: str, expected: str, tolerance: float | None = None) -> str | None:
    """None when the outputs agree, else why not. Line by line, whitespace-insensitive within a line,
    trailing blank lines ignored; numbers may differ by `tolerance` when one is given."""
    got_lines, expected_lines = _output_lines(got), _output_lines(expected)
    if len(got_lines) != len(expected_lines):
        return f"expected {len(expected_lines)} lines, got {len(got_lines)}"
    for number, (a, b) in enumerate(zip(got_lines, expected_lines, strict=True), 1):
        if not _tokens_match(a.split(), b.split(), tolerance):
            return f"line {number}: expected {b[:80]!r}, got {a[:80]!r}"
    return None


def compare_tokens(got: str, expected: str, tolerance: float | None = None) -> str | None:
    """None when the outputs have the same whitespace-separated tokens, whatever the line breaks."""
    got_tokens, expected_tokens = got.split(), expected.split()
    if _tokens_match(got_tokens, expected_tokens, tolerance):
        return None
    for number, (a, b) in enumerate(zip(got_tokens, expected_tokens, strict=False), 1):
        if not _tokens_match([a], [b], tolerance):
            return f"token {number}: expected {b[:80]!r}, got {a[:80]!r}"
    return f"expected {len(expected_tokens)} tokens, got {len(got_tokens)}"
