"""The comparison normalisation shared by exact_dedup, near_dedup and decontaminate."""

from __future__ import annotations

import random

import polars as pl
import pytest

from curate.text import WHITESPACE, _canonical, content_expr, exact_key_expr, normalize_expr, normalize_text

BASE = "Find $\\frac{1}{2} + x$ if $x = 3$."

SAME_PROBLEM = [
    "find  $\\frac{1}{2}+x$ if $x=3$.",  # case and spacing
    "Find $\\dfrac{1}{2} + x$ if $x = 3$.",  # \dfrac
    "Find $\\tfrac12 + x$ if $x = 3$.",  # \tfrac and \frac12
    "Find $\\left. \\frac{1}{2} + x \\right.$ if $x = 3$.",  # \left. \right.
    "Find \\(\\frac{1}{2} + x\\) if $x = 3$.",  # \( \) math delimiters
    "Problem: Find $\\frac{1}{2} + x$ if $x = 3$.",
    "Question 7. Find $\\frac{1}{2} + x$ if $x = 3$.",
    "Solve the following math problem step by step: Find $\\frac{1}{2} + x$ if $x = 3$.",
    BASE + "\nPlease reason step by step, and put your final answer within \\boxed{}.",
    BASE + " Let's think step by step and output the final answer within \\boxed{}.",
    BASE + "\n\nReturn your final response within \\boxed{}.",
    BASE + " Please put the final answer in \\boxed{}. Show your work.",
    "Ｆｉｎｄ $\\frac{1}{2} + x$ if $x = 3$.",  # full-width letters (NFKC)
    "Find\u00a0$\\frac{1}{2} + x$ if $x = 3$.",  # no-break space
]


@pytest.mark.parametrize("variant", SAME_PROBLEM)
def test_variants_normalise_to_the_same_text(variant):
    assert normalize_text(variant) == normalize_text(BASE)


def test_tokens_are_joined_by_single_spaces():
    assert normalize_text(BASE) == "find 1 / 2 + x if x = 3 ."


def test_quotes_dashes_and_left_paren():
    assert normalize_text("He said \u201chi\u201d \u2013 it\u2019s $\\left(a\\right)$") == normalize_text(
        'he said "hi" - it\'s $(a)$'
    )
    assert normalize_text("$a \\le b \\ge c$") == normalize_text("$a \\leq b \\geq c$")


@pytest.mark.parametrize(
    "different",
    [
        "Find $\\frac{1}{2} + x$ if $x = 4$.",  # a changed number is a different problem
        "Find $\\frac{1}{3} + x$ if $x = 3$.",
        BASE + " Express your answer as a common fraction.",  # part of the problem, not an instruction
        "Find $\\frac{1}{2} - x$ if $x = 3$.",
    ],
)
def test_what_changes_the_problem_is_kept(different):
    assert normalize_text(different) != normalize_text(BASE)


def test_instruction_words_inside_the_problem_stay():
    text = "Put your final answer in simplest form: what is 6/8?"
    assert normalize_text(text).startswith("put your final answer in simplest form")


def test_null_and_empty():
    assert normalize_text(None) is None
    assert normalize_text("") == ""
    assert normalize_text("Problem:") == ""


def test_content_tokens_are_words_numbers_and_relations():
    frame = pl.DataFrame({"p": ["In 2019, $x \\le 3.5$ (kg) cost \\$12.", "$$ ( ) , $$"]})
    content = frame.select(content_expr(normalize_expr("p")))["p"].to_list()
    assert content == [["in", "2019", "x", "leq", "3", "5", "kg", "cost", "12"], []]


def test_whitespace_is_the_regex_engines_whitespace():
    """WHITESPACE holds exactly the characters Polars' regex `\\s` matches (every code point)."""
    chars = pl.Series([chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF])
    assert set(chars.filter(chars.str.contains(r"^\s$")).to_list()) == set(WHITESPACE)


def test_exact_key_is_the_canonical_text_without_whitespace():
    """exact_key_expr (one literal pass dropping whitespace and layout) gives what removing `\\s+`
    from _canonical's output gives, on texts mixing every whitespace, math layout and LaTeX."""
    rng = random.Random(5)
    pieces = [
        *WHITESPACE,
        "$",
        "{",
        "}",
        "\\frac",
        "\\left(",
        "x",
        "12",
        "caf\u00e9",
        "\u00bd",
        "+",
        ".",
        "Problem: ",
    ]
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 30))) for _ in range(3000)]
    frame = pl.DataFrame({"t": [*texts, *SAME_PROBLEM, None]})
    expected = frame.select(_canonical("t").str.replace_all(r"\s+", "")).to_series()
    assert frame.select(exact_key_expr("t")).to_series().equals(expected)
