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
from curate.verify.math.extract import extract_answer, find_boxed
from curate.verify.math.normalize import clean_answer, strip_delimiters
from curate.verify.math.parse import ParseError, parse_answer

Outcome = tuple[str, str | None, str]  # status, extracted answer, detail

_DETAIL_LIMIT = 300
_GOLD_CHOICE = re.compile(r"^\(?([A-J])\)?$")
_TEXT_WRAPPER = re.compile(r"\\(?:text|textbf|textrm|mathrm|mbox)\s*\{([^{}]*)\}")


def reference_answer(reference: str) -> str:
    """The answer part of a reference: after GSM8K's `####`, or the last box of a full solution."""
    if "####" in reference:
        return reference.rsplit("####", 1)[1].strip()
    if "\\boxed" in reference or "\\fbox" in reference:
        return find_boxed(reference) or reference
    return reference.strip()


def gold_choice(answer: str) -> str | None:
    """The option letter when the reference is a multiple-choice answer: "B", "(B)", "\\text{(B)}"."""
    plain = _TEXT_WRAPPER.sub(r"\1", strip_delimiters(answer)).replace(" ", "")
    match = _GOLD_CHOICE.match(plain)
    return match.group(1) if match else None


def check_raw(
    response: str | None, reference: str | None, on_extracted: Callable[[str], None] | None = None
) -> Outcome:
    """The check itself. MemoryError and RecursionError propagate (the caller maps them)."""
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
    found = extract_answer(response, choices=letter is not None)
    if found is None:
        return "no_answer", None, "no final answer found in the response"
    if on_extracted is not None:
        on_extracted(found.text)
    source = found.source + (" inside <think>" if found.in_reasoning else "")
    if letter is not None:
        if found.text == letter:
            return "pass", found.text, f"{source}: option {letter} matches"
        return "fail", found.text, f"{source}: option {letter} expected"
    cleaned_pred = clean_answer(found.text)
    if cleaned_gold.key == cleaned_pred.key:
        return "pass", found.text, f"{source}: same answer as written"
    try:
        pred = parse_answer(cleaned_pred)
    except ParseError as error:
        return "fail", found.text, f"{source}: answer cannot be parsed: {error}"
    kinds = f"{describe(gold)} vs {describe(pred)}"
    if equivalent(gold, pred):
        return "pass", found.text, f"{source}: equivalent ({kinds})"
    return "fail", found.text, f"{source}: not equivalent ({kinds})"


def check_outcome(
    response: str | None, reference: str | None, on_extracted: Callable[[str], None] | None = None
) -> Outcome:
    """check_raw with resource exhaustion reported as `timeout` and any other crash as `error`."""
    extracted: list[str] = []

    def remember(text: str) -> None:
        extracted.append(text)
        if on_extracted is not None:
            on_extracted(text)

    try:
        status, answer, detail = check_raw(response, reference, remember)
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
