"""Final-answer extraction: every variant the verifier recognises, and what it must ignore."""

import pytest

from curate.verify.math.extract import choice_letter, extract_answer, find_boxed, split_think


def answer(response: str, choices: bool = False) -> str | None:
    found = extract_answer(response, choices=choices)
    return None if found is None else found.text


def test_answer_outside_think_wins_over_abandoned_answers_inside():
    response = "<think>Maybe \\boxed{3}? No, recount.</think>The total is \\boxed{4}."
    found = extract_answer(response)
    assert (found.text, found.source, found.in_reasoning) == ("4", "boxed", False)


def test_falls_back_to_the_reasoning_when_nothing_is_outside():
    found = extract_answer("<think>so the answer is \\boxed{7}</think>\n\nThanks!")
    assert (found.text, found.in_reasoning) == ("7", True)


def test_unclosed_think_is_all_reasoning():
    assert split_think("<think>work \\boxed{2}") == ("", "work \\boxed{2}")
    assert answer("<think>work \\boxed{2}") == "2"


def test_last_box_wins_and_nested_braces_are_kept():
    assert (
        answer("First \\boxed{1}, then \\boxed{\\frac{1}{\\sqrt{2}}} at the end.") == "\\frac{1}{\\sqrt{2}}"
    )


def test_fbox_and_brace_free_box():
    assert answer("so \\fbox{12} is it") == "12"
    assert answer("hence $\\boxed 5$.") == "5"


def test_escaped_braces_inside_a_box():
    assert answer("The set is \\boxed{\\{1, 2\\}}.") == "\\{1, 2\\}"


def test_unclosed_box_of_a_truncated_response_is_ignored():
    assert answer("Earlier \\boxed{3}. Finally \\boxed{\\frac{1}{2") == "3"
    assert find_boxed("\\boxed{\\frac{1}{2") is None


def test_adjacent_boxes_form_one_list_answer():
    assert answer("The roots are $\\boxed{2}$ and $\\boxed{3}$.") == "2, 3"
    # boxes far apart are separate answers: only the last counts
    text = "We first get \\boxed{2}. " + "Then we check it again carefully. " * 5 + "So \\boxed{3}."
    assert answer(text) == "3"


@pytest.mark.parametrize(
    "response, expected",
    [
        ("Final Answer: The final answer is $\\frac{3}{4}$. I hope it is correct.", "\\frac{3}{4}"),
        ("The final answer is 42.", "42"),
        ("Answer: 17", "17"),
        ("**Answer:** $x = 2$", "x = 2"),
        ("Final answer:\n\n$$12\\pi$$", "12\\pi"),
        ("Therefore, the answer is 3.5 meters.", "3.5 meters"),
        ("She has 18 - 3 = 15 left.\n#### 15", "15"),
        ("Adding up, she earns **$18** per day.", "$18"),
    ],
)
def test_answer_phrases(response, expected):
    assert answer(response) == expected


def test_box_beats_a_phrase():
    assert answer("The answer is 3, I think. Final: \\boxed{4}") == "4"


def test_bold_headings_are_not_answers():
    assert answer("**Step 1:** add\n\nWe add the numbers and stop here.") is None


@pytest.mark.parametrize(
    "response",
    [
        "Option (B) is right since the others fail.\n\nThe answer is (B).",
        "Answer: B",
        "Thus \\boxed{B}.",
        "Thus \\boxed{\\text{(B)}}.",
        "The correct option is $\\textbf{(B)}$",
        "So we pick \\boxed{(B) 42}.",
    ],
)
def test_multiple_choice_letters(response):
    assert answer(response, choices=True) == "B"


def test_choice_mode_keeps_an_answer_that_names_no_option():
    # boxing a value instead of a letter is an answer, to be judged (and failed), not "no answer"
    assert answer("so it is \\boxed{42}", choices=True) == "42"


def test_choice_letter_forms():
    assert choice_letter("\\text{(C)}") == "C"
    assert choice_letter("(D) 12") == "D"
    assert choice_letter("E. none of these") == "E"
    assert choice_letter("42") is None
    assert choice_letter("Bob") is None


def test_no_answer():
    assert extract_answer("I am not sure how to solve this.") is None
    assert extract_answer("") is None
