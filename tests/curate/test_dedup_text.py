"""The comparison normalisation shared by exact_dedup, near_dedup and decontaminate."""

from __future__ import annotations

import polars as pl
import pytest

from curate.text import content_expr, normalize_expr, normalize_text

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
