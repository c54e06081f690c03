"""One math check, in the current process: reference + response -> (status, extracted, detail).

This is what each pool worker runs. It returns plain strings only; the parsed objects never leave
the process that parsed them. Call it directly only on trusted input (tests, debugging): it has no
time limit. `curate.verify.math.check_math` and `MathVerifier` run it in killable workers;
`curate.verify.math.judge` wraps it for in-process use.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from curate.verify.math.compare import describe, equivalent
from curate.verify.math.extract import answer_tag, extract_answer, find_boxed, reads_as_answer
from curate.verify.math.normalize import Cleaned, clean_answer, strip_delimiters, text_key
from curate.verify.math.parse import Node, ParseError, Scalar, Text, parse_answer

Outcome = tuple[str, str | None, str]  # status, extracted answer, detail

_DETAIL_LIMIT = 300
_SHORT_REFERENCE = 40  # characters: a reference this short is an answer, not a solution to read
_GOLD_CHOICE = re.compile(r"^\(?([A-J])\)?$")
# "1000,99" or "2,74": read with a decimal comma when the list reading does not match
_DECIMAL_COMMA = re.compile(r"^([-+]?\d+),(\d+)$")
_TEXT_WRAPPER = re.compile(r"\\(?:text|textbf|textrm|mathrm|mbox)\s*\{([^{}]*)\}")


def reference_answer(reference: str) -> str:
    """The answer part of a reference as datasets store it.

    After GSM8K's `####`; the last box of a full solution; an `<answer>` tag; the answer a
    solution states ("... so the answer is $5$."): references are read like responses, except
    that one that reads as an answer is taken whole (it may hold words such as `\\text{or}`).
    """
    if "####" in reference:
        return reference.rsplit("####", 1)[1].strip()
    if "\\boxed" in reference or "\\fbox" in reference:
        boxed = find_boxed(reference)
        if boxed is None and "\\boxed{" in reference:  # a box left open: its content runs to the end
            return reference.rsplit("\\boxed{", 1)[1].strip().rstrip("$}.").strip()
        return boxed or reference
    tagged = answer_tag(reference)
    if tagged:
        return tagged
    if reads_as_answer(reference):
        return reference.strip()
    # a marker, or the stated answer of a solution; a few words such as "\\text{October 30}" stay whole
    found = extract_answer(reference, mode="trace" if len(reference.strip()) <= _SHORT_REFERENCE else "auto")
    return found.text if found is not None else reference.strip()


def gold_choice(answer: str) -> str | None:
    """The option letter when the reference is a multiple-choice answer: "B", "(B)", "\\text{(B)}"."""
    plain = _TEXT_WRAPPER.sub(r"\1", strip_delimiters(answer)).replace(" ", "")
    match = _GOLD_CHOICE.match(plain)
    return match.group(1) if match else None


def check_raw(
    response: str | None,
    reference: str | None,
    on_extracted: Callable[[str], None] | None = None,
    answers: str = "auto",
) -> Outcome:
    """The check itself (`answers`: extract_answer's mode). MemoryError and RecursionError propagate."""
    if reference is None or not reference.strip():
        return "no_reference", None, "no reference answer"
    gold_text = reference_answer(reference)
    letter = gold_choice(gold_text)
    if letter is None:
        cleaned_gold = clean_answer(gold_text)
        try:
            gold = parse_answer(cleaned_gold)
        except ParseError as error:
            return "invalid_reference", None, f"reference cannot be parsed: {error}"
    if response is None or not response.strip():
        return "no_answer", None, "no response"
    words = letter is None and isinstance(gold, Text)
    found = extract_answer(response, choices=letter is not None, mode=answers, words=words)
    if found is None:
        return "no_answer", None, "no final answer found in the response"
    if on_extracted is not None:
        on_extracted(found.text)
    source = found.source + (" inside <think>" if found.in_reasoning else "")
    if letter is not None:
        if found.text == letter:
            return "pass", found.text, f"{source}: option {letter} matches"
        return "fail", found.text, f"{source}: option {letter} expected"
    outcome, read = _compare(gold, cleaned_gold, found.text, source)
    if not read and found.fallback is not None:
        # a short response that does not read as math ("1,000.99m²"): the number it states
        return _compare(gold, cleaned_gold, found.fallback, "final sentence")[0]
    return outcome


def _compare(gold: Node, cleaned_gold: Cleaned, answer: str, source: str) -> tuple[Outcome, bool]:
    """The outcome for one extracted answer, and whether that answer could be read as math."""
    cleaned_pred = clean_answer(answer)
    if cleaned_gold.key == cleaned_pred.key:
        return ("pass", answer, f"{source}: same answer as written"), True
    try:
        pred = parse_answer(cleaned_pred)
    except ParseError as error:
        return ("fail", answer, f"{source}: answer cannot be parsed: {error}"), False
    if isinstance(pred, Text) and text_key(cleaned_gold.latex) == pred.words:
        return ("pass", answer, f"{source}: same text"), True  # "\\text{r}" against "r"
    if source == "whole response" and isinstance(pred, Text) and not isinstance(gold, Text):
        # a few words against a math reference ("no idea"): no answer was given
        return ("no_answer", None, "no final answer found in the response"), False
    if isinstance(gold, Text) and text_key(strip_delimiters(answer)) == gold.words:
        return ("pass", answer, f"{source}: same text"), True  # "\\text{e}" against "e"
    kinds = f"{describe(gold)} vs {describe(pred)}"
    if equivalent(gold, pred) or _decimal_comma_equal(gold, cleaned_gold, pred, cleaned_pred):
        return ("pass", answer, f"{source}: equivalent ({kinds})"), True
    return ("fail", answer, f"{source}: not equivalent ({kinds})"), True


def _decimal_comma_equal(gold: Node, cleaned_gold: Cleaned, pred: Node, cleaned_pred: Cleaned) -> bool:
    """`1000,99` against `1000.99` (either side): a single comma read as a decimal comma."""
    gold_decimal, pred_decimal = _decimal_comma(cleaned_gold), _decimal_comma(cleaned_pred)
    if pred_decimal is not None and gold_decimal is None and isinstance(gold, Scalar):
        return equivalent(gold, pred_decimal)
    if gold_decimal is not None and pred_decimal is None and isinstance(pred, Scalar):
        return equivalent(gold_decimal, pred)
    return False


def _decimal_comma(cleaned: Cleaned) -> Node | None:
    match = _DECIMAL_COMMA.match(cleaned.latex.replace(" ", "")) if cleaned.words is None else None
    return parse_answer(Cleaned(f"{match.group(1)}.{match.group(2)}")) if match else None


def check_outcome(
    response: str | None,
    reference: str | None,
    on_extracted: Callable[[str], None] | None = None,
    answers: str = "auto",
) -> Outcome:
    """check_raw with resource exhaustion reported as `timeout` and any other crash as `error`."""
    extracted: list[str] = []

    def remember(text: str) -> None:
        extracted.append(text)
        if on_extracted is not None:
            on_extracted(text)

    try:
        status, answer, detail = check_raw(response, reference, remember, answers)
    except MemoryError:
        return "timeout", extracted[-1] if extracted else None, "memory limit exceeded"
    except RecursionError:
        return (
            "timeout",
            extracted[-1] if extracted else None,
            "recursion limit exceeded (input nested too deeply)",
        )
    except Exception as error:  # a verifier bug must not take the batch down; the row says what happened
        return "error", extracted[-1] if extracted else None, _describe_error(error)
    return status, answer, detail[:_DETAIL_LIMIT]


def _describe_error(error: Exception) -> str:
    try:
        message = f"{type(error).__name__}: {error}"
    except Exception:  # the message itself may embed an object too big to print
        message = type(error).__name__
    return message[:_DETAIL_LIMIT]
