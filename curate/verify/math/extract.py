"""Find the final answer in a model response.

Everything here is plain string scanning (no backtracking-prone regexes over the whole text), so
it stays linear in the length of the response. The order of preference (`mode="auto"`); the
first step that gives an answer wins:

1. where: the text after the last `</think>` (the reasoning may hold abandoned answers), by 2-3
   and then by 4 when that gives a number or math; the reasoning itself only after that, and
   only by 2-3; last, 4 giving words ("Thanks!" after a reasoning that boxed 7 gives 7);
2. the last `\\boxed{}` / `\\fbox{}`; boxes joined only by commas, "and"/"or", `\\quad`, math
   delimiters, a label (`y_2 =`), a unit word or `\\text{... and}` make one list answer;
3. answer tags and markers: the last `<answer>...</answer>` (R1-Zero template,
   AM-DeepSeek-R1-Distilled), "The final answer is ...", "Final Answer: ...", "Answer: ...",
   `**Answer:** ...`, "the answer is ...", GSM8K `#### n`, a bold span in the last paragraph.
   What follows the marker is the answer when it reads as one (a math span, or text with no
   sentence words); when it is a sentence ("Final Answer: The largest $n$ is 34."), the answer
   is what that sentence states (4b);
4. only a short whole response (at most SHORT_RESPONSE characters): (a) the response itself when
   it reads as an answer (`-5`, `$1,000.99`, `(7,11), (11,7)`, `28 pct`); else (b) the answer
   its last sentence states: the last math span or number of that sentence that the sentence
   does not rule out ("13, not 12" gives 13), together with the spans or numbers joined to it by
   commas or "and"/"or" ("the roots are $1$ and $-2$" gives `1, -2`). Never in a long response
   without a box or marker, where a last number is a guess. When (a) cannot be read as math
   (`1,000.99m²`), the check falls back to (b) (Extraction.fallback);
5. for multiple-choice references, the option letter of that answer, or a last-line "(B)".

`mode="trace"` uses 1-3 only (a reasoning trace: no guessing from a bare last sentence);
`mode="bare"` takes the text after `</think>` as the answer itself (its box, if it has one; the
number it states when it cannot be read as math).
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

from curate.think import split_reasoning
from curate.verify.math.pool import ANSWER_MODES

MODES = ANSWER_MODES
SHORT_RESPONSE = 300  # characters: a response this short may be an answer or one stated answer

_BOX_COMMANDS = ("\\boxed", "\\fbox")
# What may sit between two boxes that together form one answer: "\boxed{1}, \boxed{2}",
# "\boxed{3} apples and \boxed{4}", "x = \boxed{1} and y = \boxed{2}", "\boxed{1} \text{ for (a) and } \boxed{2}".
_BOX_JOINER = re.compile(
    r"^(?:\s|\$|,|;|\\quad|\\qquad|\band\b|\bor\b|\\\\|\\,|\\;|\\[()\[\]]"
    r"|\\text\{[^{}]{0,30}?(?:\band|\bor|,)\s*\}|[A-Za-z]+(?=\s*(?:and|or)\b)|[A-Za-z](?:_\{?\w+\}?)?\s*=)*$"
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
    source: str  # boxed, answer tag, final answer, answer line, answer is, ####, bold, whole response, ...
    in_reasoning: bool = False  # taken from inside <think> because nothing was outside
    fallback: str | None = None  # for a whole response: the answer its last sentence states


def split_think(response: str) -> tuple[str, str]:
    """(text outside the reasoning, text inside it), by curate.think's rule."""
    parts = split_reasoning(response)
    return parts.answer, parts.reasoning or ""


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
                span = text[len(opening) : stop].strip()
                if opening != "**" and _MORE_SPANS.match(text, stop + len(closing)):
                    return _leading_answers(text) or span  # "$x = 1$ or $x = 3$"
                return span
    line = text.split("\n", 1)[0]
    end = _SENTENCE_END.search(line)
    if end:
        line = line[: end.start()]
    line = line.strip().strip("*_ ").rstrip(".").strip("*_ ")  # "**12**", "Answer: 12**"
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
    if span and not reads_as_answer(span):
        return stated_answer(span) or span  # "Final Answer: The largest $n$ is 34."
    return span


def _bold_answer(text: str) -> str | None:
    """A bold span in the last paragraph, e.g. "She earns **$18** a day."""
    paragraphs = [p for p in text.strip().split("\n\n") if p.strip()]
    if not paragraphs:
        return None
    spans = [m.group(1).strip() for m in _BOLD.finditer(paragraphs[-1])]
    spans = [s for s in spans if s and not s.endswith(":")]
    return spans[-1] if spans else None


_ANSWER_OPEN, _ANSWER_CLOSE = "<answer>", "</answer>"


def answer_tag(response: str) -> str | None:
    """The content of the last `<answer>...</answer>` after the reasoning (an unclosed tag runs to the end)."""
    lower = response.lower()
    start = lower.rfind(_ANSWER_OPEN)
    if start < 0 or start < lower.rfind("</think>"):
        return None
    end = lower.find(_ANSWER_CLOSE, start)
    content = response[start + len(_ANSWER_OPEN) : end if end >= 0 else len(response)].strip()
    return content or None


def _tagged(content: str) -> str | None:
    """The answer inside an answer tag's content: its marker, itself, or what it states."""
    marked = _marked(content)
    if marked is not None:
        return marked[1]
    if reads_as_answer(content):
        return _strip_period(content)
    return stated_answer(content) or None


_MARKERS = (
    ("final answer", lambda t: _after_last(_FINAL_ANSWER, t)),
    ("answer line", lambda t: _after_last(_ANSWER_COLON, t)),
    ("answer is", lambda t: _after_last(_ANSWER_IS, t)),
    ("####", lambda t: _after_last(_GSM8K, t)),
    ("bold", _bold_answer),
)


def _marked(text: str) -> tuple[str, str] | None:
    for source, finder in _MARKERS:
        found = finder(text)
        if found:
            return source, found
    return None


def _answer_in(text: str, tag: str | None = None) -> Extraction | None:
    """Steps 2-3 of the module docstring in one region; `tag`: the content of its answer tag."""
    boxed = find_boxed(text)
    if boxed:
        return Extraction(boxed, "boxed")
    tagged = _tagged(tag) if tag else None
    if tagged:
        return Extraction(tagged, "answer tag")
    marked = _marked(text)
    if marked is not None:
        return Extraction(marked[1], marked[0])
    return None


def short_answer(text: str, words: bool = False) -> Extraction | None:
    """Step 4: a short response that is an answer, or the answer its last sentence states.

    With `words=True` (the reference is text) a short response without a number or math span is
    taken whole ("no solution").
    """
    text = text.strip()
    if not text or len(text) > SHORT_RESPONSE:
        return None
    stated = stated_answer(text)
    whole = _strip_period(text)
    if reads_as_answer(text):
        return Extraction(whole, "whole response", fallback=stated if stated != whole else None)
    if stated:
        return Extraction(stated, "final sentence")
    return Extraction(whole, "whole response") if words else None


# --- answers written in words ---------------------------------------------------------------------

# Words that may stand in an answer without making it a sentence: units, percent, joiners.
_ANSWER_WORDS = frozenset(
    "and or pct percent percentage percentages per cent cents dollar dollars euro euros pound pounds yen "
    "unit units sq square cubic inch inches foot feet yard yards mile miles meter meters metre metres cm mm "
    "km kg mg ml ft yd lb lbs oz mph kph hour hours hr hrs minute minutes min mins second seconds sec secs "
    "day days week weeks month months year years gram grams kilogram kilograms liter liters litre litres "
    "degree degrees deg radian radians usd eur gbp inf infinity sqrt sin cos tan cot sec csc log ln exp "
    "pi mod pm am".split()
)
_LATEX_COMMAND = re.compile(r"\\(?:begin|end)\s*\{[^{}]*\}|\\[A-Za-z]+")
_WORD = re.compile(r"[A-Za-z]{2,}")
# Two-letter tokens are products of variables ("bx", "ab + bc") unless they are these words.
_SHORT_WORDS = frozenset("is it so we as at be by do if of on to up an my no he me us".split())
_GLUED_OR = re.compile(r"(?<=[\d)])or(?=[A-Za-z(\d-])")
_SUBSCRIPT = re.compile(r"_\{[^{}]*\}")
_MATH_SPAN = re.compile(r"\$\$(.+?)\$\$|\\\((.+?)\\\)|\\\[(.+?)\\\]|(?<!\\)\$(.+?)(?<!\\)\$", re.DOTALL)
# A number in running text: 7,425,000 / 1 000 / 1,000.99 / 2,74 / .4 / 2/3, then an optional %.
_NUMBER = re.compile(
    r"(?<![\w./])[-+\u2212]?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?!\d)|\d+)?"
    r"(?:\.\d+|,\d+(?![,\d]))?(?:\s*/\s*\d+)?(?:\s*(?:\\?%|percent\b|pct\b))?"
)
_JOIN = re.compile(r"^(?:\s|,|;|\band\b|\bor\b|\\quad|\\text\{\s*(?:and|or)\s*\})*$", re.IGNORECASE)
_LONE_NAME = re.compile(r"^\s*(?:[A-Za-z](?:_\{?\w+\}?)?'*|[A-Za-z]\([A-Za-z]\)|\\[A-Za-z]+)\s*$")
_MORE_SPANS = re.compile(r"\s*(?:,|;|and\b|or\b|\\quad)\s*(?:\$|\\\()", re.IGNORECASE)
_NEGATION = re.compile(
    r"(?:\bnot|n't|\bnever|\bnor|\binstead of|\brather than|\bexcept|\bother than)[\s,:]*$", re.IGNORECASE
)
_MATHLIKE = re.compile(r"[\d\\$^=]")
_SENTENCES = re.compile(r"(?<=[.!?])\s+(?=[^\d\s])|\n+")


def _strip_period(text: str) -> str:
    return text.strip().rstrip(".").strip()


def _is_word(token: str) -> bool:
    """A word of a sentence: not an answer word, not a point name (`ABC`), not a product (`bx`)."""
    lower = token.lower()
    if lower in _ANSWER_WORDS or (token.isupper() and len(token) <= 4):
        return False
    return len(token) > 2 or lower in _SHORT_WORDS


def reads_as_answer(text: str) -> bool:
    """Whether text is an answer as written, not a sentence about one.

    An answer is one math span (`$...$`, `\\(...\\)`, `\\[...\\]`), or text without math spans
    whose words are all _ANSWER_WORDS (`28 pct`, `x = 5`), except one word that is the whole
    answer (`east`) or follows the value (`7 apples`).
    """
    text = _strip_period(text)
    if not text:
        return False
    spans = list(_MATH_SPAN.finditer(text))
    if spans:
        return len(spans) == 1 and spans[0].start() == 0 and spans[0].end() == len(text)
    plain = re.sub(r"[{}]", " ", _SUBSCRIPT.sub(" ", _LATEX_COMMAND.sub(" ", text)))
    plain = _GLUED_OR.sub(" or ", plain)  # "W(x)=1orW(x)=-1"
    # capitals are point and segment names (AE, ABC), not words
    words = [w for w in _WORD.findall(plain) if _is_word(w)]
    if not words:
        return True
    # one word: a text answer ("east") or a unit after the value ("7 apples"), not "Therefore x = 5"
    return len(words) == 1 and bool(re.search(rf"(?:^|[\d}}]\s*){words[0]}\W*$", plain.strip()))


def _candidates(text: str) -> list[tuple[int, int, str]]:
    """(start, end, text) of each math span and each number outside them, in order."""
    found: list[tuple[int, int, str]] = []
    # an odd number of `$` is currency ("$1,000.99", "2,74 $"), not math delimiters
    if len(re.findall(r"(?<!\\)\$", text)) % 2:
        text = re.sub(r"(?<!\\)\$", " ", text)
    covered = 0
    for span in _MATH_SPAN.finditer(text):
        content = next(group for group in span.groups() if group is not None).strip()
        found.extend(_numbers(text, covered, span.start()))
        if content and not _LONE_NAME.match(content):
            found.append((span.start(), span.end(), content))
        covered = span.end()
    found.extend(_numbers(text, covered, len(text)))
    return found


def _numbers(text: str, start: int, end: int) -> list[tuple[int, int, str]]:
    return [
        (m.start(), m.end(), m.group(0).strip())
        for m in _NUMBER.finditer(text, start, end)
        if any(ch.isdigit() for ch in m.group(0))
    ]


def _leading_answers(text: str) -> str | None:
    """The first math span or number of text and those joined after it by commas or "and"/"or"."""
    found = _candidates(text)
    if not found:
        return None
    answers = [found[0]]
    for following in found[1:]:
        if not _JOIN.match(text[answers[-1][1] : following[0]]):
            break
        answers.append(following)
    return ", ".join(answer for _, _, answer in answers)


def stated_answer(text: str) -> str | None:
    """The answer a short text states: the last math span or number of its last sentence.

    Spans or numbers joined to that last one by commas or "and"/"or" come along as a list. A
    sentence ends at `.`, `!` or `?` before a space, or at a line break, outside math spans.
    """
    found = _candidates(text)
    spans = [(start, end) for start, end, _ in found]
    start = 0
    for boundary in _SENTENCES.finditer(text):
        inside = any(lo < boundary.start() < hi for lo, hi in spans)
        if not inside and text[boundary.end() :].strip():
            start = boundary.end()
    found = [candidate for candidate in found if candidate[0] >= start]
    # "13, not 12": a value the sentence rules out is not its answer
    while found and _NEGATION.search(text, 0, found[-1][0]):
        found.pop()
    if not found:
        return None
    answers = [found[-1]]
    for previous in reversed(found[:-1]):
        if not _JOIN.match(text[previous[1] : answers[-1][0]]):
            break
        answers.append(previous)
    return ", ".join(answer for _, _, answer in reversed(answers))


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


def extract_answer(
    response: str, choices: bool = False, mode: str = "auto", words: bool = False
) -> Extraction | None:
    """The final answer of a response, or None when it gives none (order: module docstring).

    With `choices=True` (the reference is an option letter) the result's text is the letter;
    `words=True` (the reference is text) lets a short response of words be the answer.
    """
    if mode not in MODES:
        raise ValueError(f"unknown answer mode {mode!r}; expected one of {MODES}")
    # The one place the response is split into answer and reasoning (the split drops <answer>
    # tags, so the tag is looked up in the whole response first).
    tag = answer_tag(response)
    outside, inside = split_think(response)
    if mode == "bare":
        return _bare(tag or outside, choices)
    # Boxes, tags and markers outside the reasoning; then a short answer after it that holds a
    # number or math ("<think>... \boxed{3} ...</think> 5": the 5); then boxes, tags and markers
    # inside the reasoning; then a short answer of words ("... \boxed{7}</think> Thanks!": the 7).
    guesses = mode == "auto"
    attempts = [(outside, False, None)] + [(outside, False, "math")] * guesses
    attempts += [(inside, True, None)] + [(outside, False, "words")] * guesses
    for region, in_reasoning, guess in attempts:
        if not region.strip():
            continue
        found = short_answer(region, words) if guess else _answer_in(region, None if in_reasoning else tag)
        if guess == "math" and found is not None and not _MATHLIKE.search(found.text):
            found = None
        if choices:
            letter = choice_letter(found.text) if found else None
            if letter is None and not guess:
                letter = _last_line_choice(region)
            if letter is not None:
                return Extraction(letter, found.source if found else "choice", in_reasoning)
        # An answer that names no option is still an answer (a wrong one for a choice question).
        if found is not None:
            return Extraction(found.text, found.source, in_reasoning, found.fallback)
    return None


def _bare(text: str, choices: bool) -> Extraction | None:
    """`mode="bare"`: the text is the answer as written (its box when it has one); when it cannot be
    read as math ("1,000.99m²"), the number it states."""
    boxed = find_boxed(text)
    answer = boxed if boxed else _strip_period(text)
    if not answer:
        return None
    if choices:
        answer = choice_letter(answer) or answer
    if boxed:
        return Extraction(answer, "boxed")
    stated = stated_answer(answer)
    return Extraction(answer, "whole response", fallback=stated if stated != answer else None)
