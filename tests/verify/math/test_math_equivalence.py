"""Answer equivalence, family by family, positive and negative, plus math-verify's known false positives.

These run the check in-process (`judge`) for speed; test_math_pool.py covers the isolated path.
"""

import pytest

from curate.verify.math import judge


def status(reference: str, predicted: str) -> str:
    return judge(f"Some work first. So the result is $\\boxed{{{predicted}}}$.", reference).status


def assert_family(cases: list[tuple[str, str, bool]]) -> None:
    wrong = [(ref, pred, want) for ref, pred, want in cases if (status(ref, pred) == "pass") != want]
    assert not wrong, f"(reference, prediction, expected pass) judged wrongly: {wrong}"


# The false positives documented for math-verify, and others of the same families.
FALSE_POSITIVE_TRAPS = [
    ("1-1/e", "1+1/e"),
    ("1 - \\frac{1}{e}", "1 + \\frac{1}{e}"),
    ("\\frac{1}{2004!}", "\\frac{1}{2006!}"),
    ("\\pi + \\frac{1}{2004!}", "\\pi + \\frac{1}{2006!}"),
    ("x + \\frac{1}{2004!}", "x + \\frac{1}{2006!}"),
    ("2^{-100}", "2^{-101}"),
    ("e^{-100}", "e^{-101}"),
    ("10^{-20}", "0"),
    ("4\\sqrt{2}", "4"),
    ("2\\pi", "2"),
    ("3\\sqrt{3}", "3"),
    ("3x-y+13=0", "3x+4y+14=0"),
    ("x+1=0", "x-1=0"),
    ("y=2x+3", "y=2x-3"),
    ("0", "3x+4y+14=0"),
    ("\\frac{1}{3}", "0.33"),
    ("\\frac{1}{3}", "0.333333"),
    ("\\sqrt{2}", "1.41421356"),
    ("\\frac{2}{3}", "0.67"),
]


@pytest.mark.parametrize("reference, predicted", FALSE_POSITIVE_TRAPS)
def test_false_positive_traps_fail(reference, predicted):
    assert status(reference, predicted) == "fail"
    assert status(predicted, reference) == "fail"  # and the other way round


def test_numbers():
    assert_family(
        [
            ("42", "42", True),
            ("42", "42.0", True),
            ("42", "43", False),
            ("-7", "-7", True),
            ("-7", "7", False),
            ("0.5", "\\frac{1}{2}", True),
            ("\\frac12", "0.5", True),
            ("\\dfrac{17}{50}", "0.34", True),
            (".35625", "0.35625", True),
            (".0000672", "6.72 \\times 10^{-5}", True),
            ("1.25", "\\frac{5}{4}", True),
            ("1.25", "1.2", False),
            ("\\frac{14}{3}", "14/3", True),
            ("\\frac43", "\\frac{4}{3}", True),
            ("\\frac 59", "\\frac{5}{9}", True),
            ("\\frac{3}{4}", "\\frac{4}{3}", False),
            ("0.\\overline{3}", "\\frac{1}{3}", True),
        ]
    )


def test_mixed_numbers():
    assert_family(
        [
            ("3\\frac{1}{2}", "\\frac{7}{2}", True),
            ("3\\frac{1}{2}", "3.5", True),
            ("137 \\frac{1}{2}", "275/2", True),
            ("1\\frac{4}{5}", "\\frac{9}{5}", True),
            ("3\\frac{1}{2}", "\\frac{3}{2}", False),
        ]
    )


def test_thousands_separators_and_spaces_in_numbers():
    assert_family(
        [
            ("10{,}000", "10000", True),
            ("11,\\! 111,\\! 111,\\! 100", "11111111100", True),
            ("58,500", "58500", True),
            ("\\$32,\\!348", "32348", True),
            ("1,000,000", "1\\,000\\,000", True),
            ("1 000 000", "1000000", True),
            ("58,500", "585", False),
            ("1,-2", "-2, 1", True),  # a comma list, not a thousands separator
        ]
    )


def test_percentages():
    assert_family(
        [
            ("10\\%", "10", True),
            ("10\\%", "10\\%", True),
            ("10\\%", "0.1", True),
            ("25", "25\\%", True),
            ("10\\%", "1", False),
            ("12.5\\%", "12.5 percent", True),
        ]
    )


def test_units_and_text_words_are_ignored():
    assert_family(
        [
            ("5.4 \\text{ cents}", "5.4", True),
            ("864 \\mbox{ inches}^2", "864", True),
            ("15\\mbox{ cm}^2", "15 \\text{ cm}^2", True),
            ("\\$18.90", "18.9", True),
            ("\\$36", "36 \\text{ dollars}", True),
            ("12", "12 \\text{ apples}", True),
            ("20", "20 square units", True),
            ("5", "5 \\text{ cm}", True),
            ("5", "6 \\text{ cm}", False),
        ]
    )


def test_degrees():
    assert_family(
        [
            ("30^\\circ", "30", True),
            ("30^\\circ", "30^{\\circ}", True),
            ("30^\\circ", "\\frac{\\pi}{6}", True),
            ("\\frac{\\pi}{6}", "30^\\circ", True),
            ("\\frac{270}7\\text{ degrees}", "\\frac{270}{7}", True),
            ("30^\\circ", "60^\\circ", False),
            ("30^\\circ", "\\frac{\\pi}{3}", False),
        ]
    )


def test_constants_and_radicals():
    assert_family(
        [
            ("\\pi", "\\pi", True),
            ("12\\pi", "12 \\pi", True),
            ("\\sqrt{8}", "2\\sqrt{2}", True),
            ("11\\sqrt2", "11\\sqrt{2}", True),
            ("\\frac{\\sqrt{3}}{3}", "\\frac{1}{\\sqrt{3}}", True),
            ("\\sqrt{51}", "\\sqrt{51}", True),
            ("\\sqrt{51}", "\\sqrt{52}", False),
            ("e^{2}", "\\exp(2)", True),
            ("\\sqrt{5+2\\sqrt{6}}", "\\sqrt{2}+\\sqrt{3}", True),
            ("\\sin\\frac{\\pi}{12}", "\\frac{\\sqrt{6}-\\sqrt{2}}{4}", True),
            ("\\log_2 8", "3", True),
            ("\\frac{20000}{\\pi}", "\\frac{20000}{3.14}", False),
        ]
    )


def test_symbolic_expressions():
    assert_family(
        [
            ("(x+1)^2", "x^2+2x+1", True),
            ("(a+5)(b+2)", "ab+2a+5b+10", True),
            ("\\frac{11+9a}{20}", "\\frac{11}{20}+\\frac{9a}{20}", True),
            ("\\sin^2 x + \\cos^2 x", "1", True),
            ("\\cot x", "\\frac{\\cos x}{\\sin x}", True),
            ("x^5 - x^4 + x^3 - x^2 + x - 1", "(x-1)(x^4+x^2+1)", True),
            ("x+1", "x-1", False),
            ("2k", "2n", False),
            ("\\sqrt{x^2}", "x", False),
            ("8n^2 + 4n + 1", "8n^2+4n", False),
            ("p - q", "q - p", False),
        ]
    )


def test_equations_are_compared_as_equations():
    assert_family(
        [
            ("y = 2x + 3", "y=3+2x", True),
            ("y = 2x + 3", "2y = 4x + 6", True),
            ("y = 2x + 3", "y - 2x = 3", True),
            ("5x - 7y + 11z + 4 = 0", "-5x + 7y - 11z - 4 = 0", True),
            ("x=5", "5", True),
            ("5", "x = 5", True),
            ("x=5", "x = 5", True),
            ("x^2 = 4", "x = 2", False),
            ("y = 2x + 3", "y = 2x + 4", False),
            ("y = -2x", "y = 2x", False),
        ]
    )


def test_sets_are_unordered():
    assert_family(
        [
            ("\\{1, 2, 3\\}", "\\{3, 2, 1\\}", True),
            ("\\{1, 2, 3\\}", "\\{1, 2\\}", False),
            ("\\{1\\pm\\sqrt{5},-2\\}", "-2, 1+\\sqrt{5}, 1-\\sqrt{5}", True),
            ("3 \\pm 2 \\sqrt{2}", "3-2\\sqrt{2}, 3+2\\sqrt{2}", True),
            ("1 \\pm \\sqrt{19}", "1 + \\sqrt{19}", False),
            ("1, 1, 2", "1, 2, 2", False),
            ("3, 5, 7", "7, 5, 3", True),
            ("\\emptyset", "\\varnothing", True),
        ]
    )


def test_tuples_and_points_are_ordered():
    assert_family(
        [
            ("(8,-2)", "(8, -2)", True),
            ("(8,-2)", "(-2, 8)", False),
            ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3, \\pi/2)", True),
            ("(6,31,-1)", "(6, 31, -1)", True),
            ("(6,31,-1)", "(6, -1, 31)", False),
            ("(1,-16,-4,43)", "(1,-16,-4)", False),
            ("\\left( \\frac{3}{2}, -13 \\right)", "(1.5, -13)", True),
        ]
    )


def test_intervals_open_and_closed_matter():
    assert_family(
        [
            ("(3,4]", "(3, 4]", True),
            ("(3,4]", "(3, 4)", False),
            ("[3,4]", "(3,4)", False),
            ("(2,\\infty)", "x > 2", True),
            ("(2,\\infty)", "x \\ge 2", False),
            ("(-\\infty, 2) \\cup (3, \\infty)", "(3, \\infty) \\cup (-\\infty, 2)", True),
            ("(-\\infty, 2) \\cup (3, \\infty)", "(-\\infty, 2] \\cup (3, \\infty)", False),
            ("x \\in [-2,7]", "[-2, 7]", True),
            ("[-2,7]", "-2 \\le x \\le 7", True),
            ("[-2,7]", "-2 < x \\le 7", False),
            ("\\left[ \\frac{\\pi^2}{8}, \\frac{5 \\pi^2}{4} \\right]", "[\\pi^2/8, 5\\pi^2/4]", True),
            ("(2,4)", "(2,4)", True),
            ("(2,4)", "2 < x < 4", True),
        ]
    )


def test_matrices_and_vectors():
    assert_family(
        [
            (
                "\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}",
                "\\begin{bmatrix} -1 & 0 \\\\ 0 & -1 \\end{bmatrix}",
                True,
            ),
            (
                "\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}",
                "\\begin{pmatrix} -1 & 0 \\\\ 0 & 1 \\end{pmatrix}",
                False,
            ),
            (
                "\\begin{pmatrix} 1/5 \\\\ -18/5 \\end{pmatrix}",
                "\\begin{pmatrix} 0.2 \\\\ -3.6 \\end{pmatrix}",
                True,
            ),
            (
                "\\begin{pmatrix} 1/5 \\\\ -18/5 \\end{pmatrix}",
                "\\left(\\frac{1}{5}, -\\frac{18}{5}\\right)",
                True,
            ),
            (
                "\\begin{pmatrix} -7 \\\\ 16 \\\\ 5 \\end{pmatrix}",
                "\\begin{pmatrix} -7 \\\\ 5 \\\\ 16 \\end{pmatrix}",
                False,
            ),
        ]
    )


def test_multiple_answers():
    reference = "2, 3"
    assert judge("The roots are $\\boxed{3}$ and $\\boxed{2}$.", reference).status == "pass"
    assert judge("The roots are $\\boxed{3}$ and $\\boxed{4}$.", reference).status == "fail"
    assert judge("x = 2 or x = 3, so \\boxed{x=2 \\text{ or } x=3}", reference).status == "pass"
    # one answer written two ways is not hedging
    assert (
        judge("$\\boxed{15\\frac{39}{40}}$, or $\\boxed{\\frac{639}{40}}$ inches", "\\frac{639}{40}").status
        == "pass"
    )
    # hedging between two values is wrong even if one of them is right
    assert judge("It is $\\boxed{4}$ or $\\boxed{5}$.", "4").status == "fail"


def test_complex_numbers():
    assert_family(
        [
            ("6 - 5i", "6-5i", True),
            ("6 - 5i", "-5i + 6", True),
            ("6 - 5i", "6 + 5i", False),
            ("6 - 5i", "5", False),
            ("1+2i", "\\frac{2+4i}{2}", True),
            ("-1", "i^2", True),
        ]
    )


def test_inequalities():
    assert_family(
        [
            ("x > 2", "2 < x", True),
            ("x > 2", "2x > 4", True),
            ("x > 2", "-x < -2", True),
            ("x > 2", "x < 2", False),
            ("x > 2", "x \\geq 2", False),
            ("x + y \\le 3", "3 \\ge y + x", True),
            ("x + y \\le 3", "-x - y \\le -3", False),
        ]
    )


def test_plain_text_answers():
    assert_family(
        [
            ("\\text{Evelyn}", "\\text{Evelyn}", True),
            ("\\text{Evelyn}", "Evelyn", True),
            ("\\text{east}", "East", True),
            ("\\text{even}", "\\text{Even}", True),
            ("\\text{even}", "\\text{odd}", False),
            ("\\text{ellipse}", "\\text{parabola}", False),
            ("\\text{no solution}", "no solution", True),
        ]
    )


def test_multiple_choice_references():
    assert judge("Thus the answer is (C).", "\\text{(C)}").status == "pass"
    assert judge("\\boxed{C}", "C").status == "pass"
    assert judge("Answer: D", "\\text{(C)}").status == "fail"
    assert judge("\\boxed{\\textbf{(E)}}", "(E)").status == "pass"


def test_statuses():
    assert judge("\\boxed{1}", None).status == "no_reference"
    assert judge("\\boxed{1}", "   ").status == "no_reference"
    assert judge("I give up.", "1").status == "no_answer"
    assert judge(None, "1").status == "no_answer"
    # an unparseable reference is never a pass, even against the same text
    broken = judge("\\boxed{\\frac{1}{}", "\\frac{1}{}")
    assert broken.status == "invalid_reference"
    assert judge("\\boxed{5}", "4:30p..").status == "invalid_reference"
    # an answer we cannot parse is a fail, with the answer in the verdict
    unreadable = judge("\\boxed{\\frac{1}{}}", "1")
    assert (unreadable.status, unreadable.extracted) == ("fail", "\\frac{1}{}")


def test_references_as_datasets_store_them():
    # GSM8K: the reference is a whole solution ending in "#### n"; MATH: sometimes a boxed solution
    assert (
        judge("She pays \\boxed{18} dollars.", "Janet pays 16 - 3 - 4 = 9 eggs * 2 = 18\n#### 18").status
        == "pass"
    )
    assert judge("\\boxed{5}", "so $x = \\boxed{5}$.").status == "pass"
    assert judge("\\boxed{5}", "$5$").status == "pass"


def test_verdict_fields_are_plain_text():
    verdict = judge("We find \\boxed{\\frac{1}{2}}.", "0.5")
    assert verdict.status == "pass"
    assert verdict.extracted == "\\frac{1}{2}"
    assert isinstance(verdict.detail, str) and verdict.detail.startswith("boxed")


def test_radicals_are_decided_exactly_not_numerically():
    # the difference is sqrt(6) * (1/2004! - 1/2006!): nonzero, far below any float tolerance
    assert (
        status("\\sqrt{6} \\cdot (1 + \\frac{1}{2004!})", "\\sqrt{6} \\cdot (1 + \\frac{1}{2006!})") == "fail"
    )
    assert status("\\sqrt{x} (1 + \\frac{1}{2004!})", "\\sqrt{x} (1 + \\frac{1}{2006!})") == "fail"
    assert status("\\frac{\\sqrt{6}-\\sqrt{2}}{4}", "\\frac{\\sqrt{2-\\sqrt{3}}}{2}") == "pass"


def test_worked_chains_end_in_the_answer():
    assert status("\\sqrt{5}", "AB = \\sqrt{2^2 + 1} = \\sqrt{5}") == "pass"
    assert status("5", "2 + 3 = 5") == "pass"
    assert status("6", "2 + 3 = 5") == "fail"
