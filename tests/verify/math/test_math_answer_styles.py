"""Answers as people write them: bare, in a sentence, tagged, listed; references as datasets store them.

Each family has positives and negatives; the traps must stay failures. Checks run in-process (`judge`).
"""

import json
from pathlib import Path

import pytest

from curate.verify.math import judge
from curate.verify.math.check import reference_answer
from curate.verify.math.extract import extract_answer, reads_as_answer, stated_answer

PAIRS = Path(__file__).resolve().parents[3] / "bench" / "data" / "math_answer_styles.jsonl"


def passes(response: str, reference: str, answers: str = "auto") -> bool:
    return judge(response, reference, answers).status == "pass"


def assert_cases(cases: list[tuple[str, str, bool]]) -> None:
    wrong = [(resp, ref, want) for resp, ref, want in cases if passes(resp, ref) != want]
    assert not wrong, f"(response, reference, expected pass) judged wrongly: {wrong}"


def test_a_short_response_is_its_own_answer():
    assert_cases(
        [
            ("-8", "-8", True),
            ("-8", "8", False),
            (".6", "0.6", True),
            ("300.0", "300", True),
            ("<think>maybe 4</think>\n\n2/7", "\\frac{2}{7}", True),
            ("<think>maybe 4</think>\n\n2/7", "4", False),
            ("(3, 5), (5, 3)", "(5,3) or (3,5)", True),
        ]
    )


def test_a_short_sentence_gives_the_answer_it_states():
    assert stated_answer("The shop had 40 pens, now it has 25.") == "25"
    assert stated_answer("Hence $x = 3$ and $x = 7$.") == "x = 3, x = 7"
    assert stated_answer("We are done.") is None
    assert_cases(
        [
            ("The ribbon is not 8 but 2,500.5 cm long.", "2500.5", True),
            ("The ribbon is not 8 but 2,500.5 cm long.", "8", False),
            ("Final Answer: The biggest $m$ is 61.", "61", True),
            ("Final Answer: The biggest $m$ is 61.", "16", False),
        ]
    )


def test_a_last_number_is_no_answer_in_a_long_response_without_a_marker():
    long_response = "We try many cases. " * 30 + "The count is 12."
    assert extract_answer(long_response) is None
    assert judge(long_response, "12").status == "no_answer"


def test_words_alone_against_a_math_reference_are_no_answer():
    assert judge("no clue", "4").status == "no_answer"
    assert passes("west", "\\text{west}")


def test_reads_as_answer():
    assert reads_as_answer("28 pct") and reads_as_answer("$x = 5$") and reads_as_answer("7 apples")
    assert not reads_as_answer("The value is 5") and not reads_as_answer("so $x$ is $5$")
    assert reads_as_answer("-(ab + ac + bc)") and not reads_as_answer("it is 4")  # products, not words
    # capitals and subscripts are names, not words
    assert reads_as_answer("\\frac{AE}{EC}=\\frac{1}{2}") and reads_as_answer("S_{ABCD}:S=3:8")


def test_number_formats():
    assert_cases(
        [
            ("6,125,000", "6125000", True),
            ("6 125 000", "6125000", True),
            ("6,125,000", "612500", False),
            ("$4,000.25", "4000.25", True),
            ("4,000.25$", "4000.25", True),
            ("4000,25", "4000.25", True),
            ("0,375", "0.375", True),
            ("Total: 3,40 €", "3.4", True),
            ("3,40 €", "34", False),
            ("12, 500", "12500", False),  # a comma and a space: a list of two numbers
        ]
    )


def test_unit_and_percent_words():
    assert_cases(
        [
            ("\\boxed{64 pct}", "64\\%", True),
            ("64 percentage", "64\\%", True),
            ("64 percent", "0.64", True),
            ("\\boxed{63 pct}", "64\\%", False),
            ("\\boxed{30\\mathrm{~m/s}}", "30", True),
            ("\\boxed{30\\,\\mathrm{km}/\\mathrm{h}}", "30", True),
            ("\\boxed{31\\mathrm{~m/s}}", "30", False),
        ]
    )


def test_several_answers_match_as_a_set_unless_the_reference_is_a_tuple():
    assert_cases(
        [
            ("\\boxed{7} and \\boxed{8} and \\boxed{9}", "{7,8,9}", True),
            ("\\boxed{7} and \\boxed{8}", "{7,8,9}", False),  # a partial list
            ("\\(\\boxed{2}\\) and \\(\\boxed{-6}\\)", "\\boxed{-6,2}", True),
            ("\\boxed{(1,4), (2,3)}", "(2,3), (1,4)", True),
            ("\\boxed{(4,1), (2,3)}", "(2,3), (1,4)", False),
            ("\\boxed{(2, 5)}", "(5, 2)", False),
            ("\\boxed{(5, 2)}", "{2,5}", False),
            (
                "\\boxed{12} and \\boxed{5}",
                "u_{A}=5\\mathrm{~}/\\mathrm{},u_{B}=12\\mathrm{~}/\\mathrm{}",
                True,
            ),
            (
                "\\boxed{12} and \\boxed{6}",
                "u_{A}=5\\mathrm{~}/\\mathrm{},u_{B}=12\\mathrm{~}/\\mathrm{}",
                False,
            ),
            ("\\boxed{5} and \\boxed{9}", "(1) 5; (2) 9", True),  # part labels of a multi-part answer
            ("\\boxed{5} and \\boxed{8}", "(1) 5; (2) 9", False),
        ]
    )


def test_references_as_stored():
    assert reference_answer("Sum both rows, which gives $\\boxed{30}$ in all.") == "30"
    assert reference_answer("We add them up. The answer is $30$.") == "30"
    assert reference_answer("f(x)=1 or f(x)=-1") == "f(x)=1 or f(x)=-1"
    assert reference_answer("\\text{October 30}") == "\\text{October 30}"  # a few words stay whole
    assert_cases(
        [
            ("\\boxed{13:20}", "V_{1}:V_{2}=13:20", True),
            ("\\boxed{20:13}", "V_{1}:V_{2}=13:20", False),
            ("\\boxed{13/20}", "S_{ABD}:S=13:20", True),
            ("\\boxed{1}", "M:N=1", True),
            ("\\boxed{6}", "z = 6", True),
            ("\\boxed{g(x)=3 \\text{ or } g(x)=-3}", "g(x)=3 or g(x)=-3", True),
            ("\\boxed{g(x)=3}", "g(x)=3 or g(x)=-3", False),
            ("\\boxed{21}", "$$21$$", True),
            ("\\boxed{21}", "\\(21\\)", True),
            ("\\boxed{21}", "\\text{21}", True),
            ("\\boxed{22}", "\\text{21}", False),
        ]
    )


def test_answer_tags_and_markers():
    r1_zero = "<think> try 2, then 3 </think> <answer> 9 </answer>"
    distilled = "<think>\ncases\n</think>\n<answer>\nBoth cases agree.\n\nSo the sum is $9$.\n</answer>"
    assert_cases(
        [
            (r1_zero, "9", True),
            (r1_zero, "3", False),
            (distilled, "9", True),
            (distilled, "8", False),
            ("Steps.\n\n**Answer:** $\\frac{4}{9}$", "4/9", True),
            ("Steps.\nFinal Answer: 27", "27", True),
            ("Steps.\nFinal Answer: 27", "72", False),
            ("Steps.\n\n**Answer: 27**", "27", True),
            ("The answer is **27**.", "27", True),
            ("THE ANSWER IS 27", "27", True),
        ]
    )


TRAPS = [
    ("\\boxed{\\frac{1}{2004!}}", "\\frac{1}{2006!}"),
    ("1/2004!", "1/2006!"),
    ("\\boxed{3x-y+13=0}", "3x+4y+14=0"),
    ("\\boxed{1-1/e}", "1+1/e"),
    ("1-1/e", "1+1/e"),
    ("\\boxed{\\pm 2021}", "2021"),
    ("$\\pm 2021$", "2021"),
    ("\\boxed{2021}", "\\pm 2021"),
    ("\\boxed{1, 2}", "1, 2, 3"),
    ("\\boxed{0.33}", "1/3"),
    ("0.33", "\\frac{1}{3}"),
    ("\\boxed{4\\sqrt{2}}", "4"),
    ("4\\sqrt{2}", "4"),
    ("The answer is not 10, it is 11.", "10"),
    ("11, not 10.", "10"),  # a value the sentence rules out
    ("The answer is 11 rather than 10", "10"),
]


@pytest.mark.parametrize("response, reference", TRAPS)
def test_traps_stay_failures(response, reference):
    assert judge(response, reference).status == "fail"


def test_answer_modes():
    # bare: the response is the answer, words and all; trace: no guessing from a bare sentence
    assert passes("1,250", "1250", "bare")
    assert judge("The total is 1,250.", "1250", "bare").status == "fail"
    assert judge("The total is 1,250.", "1250", "trace").status == "no_answer"
    assert passes("The total is 1,250.", "1250", "auto")
    assert passes("Work.\n\\boxed{5}", "5", "trace") and passes("\\boxed{5}", "5", "bare")
    assert passes("3,500.5m²", "3500.5", "bare") and passes("3,500.5m²", "3500.5")
    with pytest.raises(ValueError):
        extract_answer("5", mode="guess")


def test_the_bench_pairs_agree_with_their_expected_verdicts():
    rows = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 300 and {row["family"] for row in rows} >= {"bare", "sentence", "trap", "answer tag"}
    wrong = [row for row in rows if passes(row["response"], row["reference"]) != (row["expected"] == "pass")]
    assert not wrong, wrong


def test_a_label_on_the_left_names_the_answer_but_an_expression_does_not():
    assert_cases(
        [
            ("\\boxed{(4,1)}", "(a,b)=(4,1)", True),
            ("\\boxed{(1,4)}", "(a,b)=(4,1)", False),
            ("\\boxed{3}", "|PQ|=3", True),
            ("\\boxed{\\frac{2}{\\sqrt{3}}}", "\\frac{AM}{MB}=\\frac{2}{\\sqrt{3}}", True),
            ("\\boxed{12}", "x \\approx 12", True),
            ("\\boxed{5a+b}", "9 = 5a+b", False),  # an equation, not a label: 5a+b alone is no answer
            ("\\boxed{4}", "3x + y = 4", False),
            ("\\boxed{(6,1),(8,1)}", "a=6,b=1;a=8,b=1", True),
            ("\\boxed{(6,1),(8,2)}", "a=6,b=1;a=8,b=1", False),
        ]
    )


def test_references_written_with_slips():
    assert_cases(
        [
            ("\\boxed{\\frac{2}{9}}", "\\\\frac{2}{9}", True),  # escaped twice
            ("\\boxed{3} and \\boxed{-3}", "y_{1}=3,\\quady_{2}=-3", True),  # \quad run into the name
            ("\\boxed{3} and \\boxed{4}", "y_{1}=3,\\quady_{2}=-3", False),
            (
                "\\boxed{h(t)=2 \\text{ or } h(t)=0}",
                "\\boxed{h(t) = 2 \\text{ or } h(t) = 0",
                True,
            ),  # box left open
            ("$q$", "\\text{q}", True),
            ("\\boxed{40 cm, 9}", "{40,9}", True),
            ("\\boxed{41 cm, 9}", "{40,9}", False),
            ("Result \\[\n 16 \n\\]", "16", True),  # display math spans lines
        ]
    )


def test_more_sentences_and_words():
    assert_cases(
        [
            ("Therefore, y = 9.", "9", True),  # a leading word makes a sentence, not a text answer
            ("It's 9.", "9", True),
            ("9 is what we get.", "9", True),
            ("The answer is $y = \\frac{1}{3}$ or $y=2$.", "\\frac13, 2", True),
            ("The answer is $y = \\frac{1}{3}$ or $y=2$.", "\\frac13", False),
            ("y ∈ [2, 5]", "[2,5]", True),
            ("y²-4", "y^2-4", True),
            ("The answer is ±17.", "17", False),
            ("all real numbers", "\\text{all real numbers}", True),
            ("I gave up.", "\\text{all real numbers}", False),
        ]
    )


def test_boxes_joined_by_labels_units_and_text():
    from curate.verify.math.extract import find_boxed

    assert find_boxed("so $a = \\boxed{2}$ and $b = \\boxed{5}$.") == "2, 5"
    assert find_boxed("\\boxed{3} apples and \\boxed{4} pears") == "3, 4"
    assert find_boxed("$$\\boxed{(1,1)} \\text{ for part (a) and } \\boxed{(2,2)}$$") == "(1,1), (2,2)"
    # a box, then a sentence, then another box: only the last is the answer
    assert find_boxed("\\boxed{3}, so then x = \\boxed{4}") == "4"
    assert_cases(
        [
            ("$a = \\boxed{x+1}$ and $b = \\boxed{x-1}$", "a=x+1, b=x-1", True),
            ("$a = \\boxed{x+1}$ and $b = \\boxed{x+2}$", "a=x+1, b=x-1", False),
            ("$(0,1)$", "0<g(t)<1", True),
            ("$(0,2)$", "0<g(t)<1", False),
            ("H(x)=2orH(x)=-2", "H(x)=2 \\text{ or } H(x)=-2", True),
        ]
    )


def test_a_short_answer_after_the_reasoning_beats_a_box_inside_it():
    assert extract_answer("<think>maybe \\boxed{3}</think>\n\n5").text == "5"
    assert extract_answer("<think>so \\boxed{7}</think>\n\nThanks!").text == "7"
    assert extract_answer("<think>maybe \\boxed{3}</think>\n\n5", mode="trace").text == "3"
