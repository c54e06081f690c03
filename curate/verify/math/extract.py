"""Find the final answer in a model response.

Everything here is plain string scanning (no backtracking-prone regexes over the whole text), so
it stays linear in the length of the response. The order of preference:

1. the text after the last `</think>` (the reasoning may hold abandoned answers), then the
   reasoning itself;
2. within that text: the last `\\boxed{}` / `\\fbox{}` (adjacent boxes make a list),
   "The final answer is ...", "Answer: ...", "the answer is ...", GSM8K `#### n`,
   a bold span in the last paragraph;
3. for multiple-choice references, the option letter of that answer, or a last-line "(B)".
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

_BOX_COMMANDS = ("\\boxed", "\\fbox")
# What may sit between two boxes that together form one answer: "\boxed{1}, \boxed{2}".
_BOX_JOINER = re.compile(
    r"^(?:\s|\$|,|;|\\quad|\\qquad|\\text\{\s*(?:and|or|,)\s*\}|\band\b|\bor\b|\\\\|\\,|\\;)*$"
)
_FINAL_ANSWER = re.compile(r"final answer\s*(?:is|:|=)?\s*:?", re.IGNORECASE)
_ANSWER_COLON = re.compile(r"(?:^|\n)[ \t>*#_]*(?:final\s+)?answer[ \t*_]*[:：][ \t*_]*", re.IGNORECASE)
_ANSWER_IS = re.compile(r"\bthe (?:correct |right )?(?:answer|option|choice) is\s*:?", re.IGNORECASE)
_GSM8K = re.compile(r"####[ \t]*")
_BOLD = re.compile(r"\*\*([^*\n]{1,80})\*\*")
_SENTENCE_END = re.compile(r"\.(?:\s|$)")
_TEXT_WRAPPER = re.compile(r"\\(?:text|textbf|textrm|textit|mathrm|mathbf|mbox)\s*\{([^{}]*)\}")
_STYLE = re.compile(r"\\(?:displaystyle|textstyle|left|right)(?![a-zA-Z])")
# Option letters are A-J: MMLU-Pro has ten options.
_CHOICE_ALONE = re.compile(r"^\(?([A-J])\)?[.:]?$")
_CHOICE_LEADING = re.compile(r"^(?:option\s+|choice\s+)?\(([A-J])\)|^([A-J])(?:\)|[.:]\s)")
_CHOICE_IN_LINE = re.compile(r"\(([A-J])\)|(?:answer|option|choice)(?: is)?\s*:?\s*\(?([A-J])\b")


@dataclass(frozen=True)
class Extraction:
    """An answer found in a response: the raw text, how it was found, and where."""

    text: str
    source: str  # boxed, final answer, answer line, answer is, ####, bold, choice
    in_reasoning: bool = False  # taken from inside <think> because nothing was outside


def split_think(response: str) -> tuple[str, str]:
    """(text outside the reasoning, text inside it). An unclosed <think> is all reasoning."""
    close = response.rfind("</think>")
    if close >= 0:
        inside = response[:close]
        start = inside.find("<think>")
        return response[close + len("</think>") :], inside[start + len("<think>") :] if start >= 0 else inside
    start = response.find("<think>")
    if start >= 0:
        return response[:start], response[start + len("<think>") :]
    return response, ""


def matching_brace(text: str, open_pos: int) -> int:
    """Index of the `}` closing the `{` at open_pos (escaped braces `\\{` do not count), or -1."""
    depth = 0
    i = open_pos
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _last_box_start(text: str, end: int) -> tuple[int, int]:
    """(start of the last box command before end, length of the command name), or (-1, 0)."""
    best, size = -1, 0
    for command in _BOX_COMMANDS:
        pos = text.rfind(command, 0, end)
        while pos >= 0 and pos + len(command) < len(text) and text[pos + len(command)].isalpha():
            pos = text.rfind(command, 0, pos)  # \boxedx is another command
        if pos > best:
            best, size = pos, len(command)
    return best, size


def _box_content(text: str, start: int, size: int) -> tuple[str, int] | None:
    """Content of the box starting at `start` and the index just past it, or None if unclosed."""
    i = start + size
    while i < len(text) and text[i] in " \t":
        i += 1
    if i < len(text) and text[i] == "{":
        close = matching_brace(text, i)
        if close < 0:
            return None
        return text[i + 1 : close].strip(), close + 1
    # `\boxed 5`: the box holds one token
    j = i
    while j < len(text) and not text[j].isspace() and text[j] not in "$.,;":
        j += 1
    return (text[i:j], j) if j > i else None


def find_boxed(text: str) -> str | None:
    """The last boxed answer; boxes separated only by commas/"and" are joined into a list."""
    end = len(text)
    answers: list[str] = []
    next_start = None
    while True:
        start, size = _last_box_start(text, end)
        if start < 0:
            break
        found = _box_content(text, start, size)
        if found is None:  # an unclosed box (truncated response) is no answer
            end = start
            if answers:
                break
            continue
        content, stop = found
        if next_start is not None and not _BOX_JOINER.match(text[stop:next_start]):
            break
        if content and (not answers or answers[-1] != content):
            answers.append(content)
        next_start, end = start, start
    if not answers:
        return None
    return ", ".join(reversed(answers))


def _find_unescaped(text: str, needle: str, start: int) -> int:
    """Index of needle in text from start, skipping occurrences escaped by a backslash (`\\$`)."""
    at = text.find(needle, start)
    while at > 0 and text[at - 1] == "\\" and needle == "$":
        at = text.find(needle, at + 1)
    return at


def _take_span(text: str) -> str | None:
    """The answer right at the start of `text`: a $...$ or \\(...\\) group, a bold span, or the line."""
    text = text.lstrip(" \t:*_")
    if not text.strip():
        return None
    if text.startswith("\n"):  # "Answer:" alone on its line: the answer is on the next one
        text = text.strip()
    for opening, closing in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"), ("**", "**")):
        if text.startswith(opening):
            stop = _find_unescaped(text, closing, len(opening))
            if stop > len(opening):
                return text[len(opening) : stop].strip()
    line = text.split("\n", 1)[0]
    end = _SENTENCE_END.search(line)
    if end:
        line = line[: end.start()]
    line = line.strip().rstrip(".").strip()
    return line or None


def _last_match(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    matches = deque(pattern.finditer(text), maxlen=1)  # keeps only the last
    return matches[0] if matches else None


def _after_last(pattern: re.Pattern[str], text: str) -> str | None:
    last = _last_match(pattern, text)
    if last is None:
        return None
    span = _take_span(text[last.end() :])
    if span and "\\boxed" in span:
        span = find_boxed(span) or span
    return span


def _bold_answer(text: str) -> str | None:
    """A bold span in the last paragraph, e.g. "She earns **$18** a day."""
    paragraphs = [p for p in text.strip().split("\n\n") if p.strip()]
    if not paragraphs:
        return None
    spans = [m.group(1).strip() for m in _BOLD.finditer(paragraphs[-1])]
    spans = [s for s in spans if s and not s.endswith(":")]
    return spans[-1] if spans else None


def _answer_in(text: str) -> Extraction | None:
    finders = (
        ("boxed", find_boxed),
        ("final answer", lambda t: _after_last(_FINAL_ANSWER, t)),
        ("answer line", lambda t: _after_last(_ANSWER_COLON, t)),
        ("answer is", lambda t: _after_last(_ANSWER_IS, t)),
        ("####", lambda t: _after_last(_GSM8K, t)),
        ("bold", _bold_answer),
    )
    for source, finder in finders:
        found = finder(text)
        if found:
            return Extraction(found, source)
    return None


def choice_letter(answer: str) -> str | None:
    """The option letter an answer names: "B", "(B)", "\\text{(B)}", "(B) 42", "B. 42"."""
    plain = _TEXT_WRAPPER.sub(r"\1", _STYLE.sub("", answer.replace("$", ""))).strip()
    plain = plain.replace("\\(", "(").replace("\\)", ")").strip()
    match = _CHOICE_ALONE.match(plain) or _CHOICE_LEADING.match(plain)
    if match:
        return match.group(1) or match.group(2)
    return None


def _last_line_choice(text: str) -> str | None:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return None
    found = _last_match(_CHOICE_IN_LINE, lines[-1])
    return (found.group(1) or found.group(2)) if found else None


def extract_answer(response: str, choices: bool = False) -> Extraction | None:
    """The final answer of a response, or None when it gives none.

    With `choices=True` (the reference is an option letter) the result's text is the letter.
    """
    outside, inside = split_think(response)
    for region, in_reasoning in ((outside, False), (inside, True)):
        if not region.strip():
            continue
        found = _answer_in(region)
        if choices:
            letter = choice_letter(found.text) if found else None
            if letter is None:
                letter = _last_line_choice(region)
            if letter is not None:
                return Extraction(letter, found.source if found else "choice", in_reasoning)
        # An answer that names no option is still an answer (a wrong one for a choice question).
        if found is not None:
            return Extraction(found.text, found.source, in_reasoning)
    return None
