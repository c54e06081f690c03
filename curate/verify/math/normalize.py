"""Turn an answer as written (LaTeX, units, words) into a canonical LaTeX string.

Only meaning-preserving rewrites happen here: delimiters, spacing, `\\left`/`\\right`, thousands
separators, unit words, currency. Degrees and percentages are kept as the canonical markers
`^\\circ` and `\\%`: the parser reads them as units of the value, not as noise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from curate.verify.math.extract import find_boxed, matching_brace

_TEXT_COMMANDS = re.compile(
    r"\\(text|textbf|textit|textrm|textnormal|textsf|texttt|textup|mbox|hbox|emph"
    r"|mathrm|mathbf|mathit|mathsf|mathtt|boldsymbol|bm)\s*\{"
)
_MATH_STYLE = frozenset({"mathrm", "mathbf", "mathit", "mathsf", "mathtt", "boldsymbol", "bm"})
_WORDS = re.compile(r"[A-Za-z][A-Za-z\s.\-']*")
_SEPARATOR_WORDS = re.compile(r"^\s*,?\s*(?:and|or|,)\s*,?\s*$")
_UNIT_POWER = re.compile(r"\s*(?:\^\s*\{?\s*[23]\s*\}?|²|³)")

# Unit words dropped after a number. Multi-letter units may touch the number ("5cm"); single
# letters need a space ("5 m"), since "5m" is more often 5 times m.
_UNITS = (
    "square units|sq units|square feet|square inches|square meters|square centimeters|square miles|"
    "square yards|cubic units|cubic feet|cubic inches|cubic meters|cubic centimeters|cubic yards|"
    "sq ft|sq in|sq m|sq cm|units?|inches|inch|feet|foot|ft|yards?|yd|miles?|"
    "centimeters?|centimetres?|millimeters?|millimetres?|kilometers?|kilometres?|meters?|metres?|cm|mm|km|"
    "dollars?|cents?|hours?|hrs?|minutes?|mins?|seconds?|secs?|days?|weeks?|months?|years?|"
    "kilograms?|grams?|kg|mg|pounds?|lbs?|ounces?|oz|liters?|litres?|ml|gallons?|mph|km/h|"
    "p\\.m\\.|a\\.m\\.|pm|am|people|persons?|students?|ways|times"
)
_TRAILING_UNIT = re.compile(
    rf"([\d}}).]|\\pi)\s*(?:(?:{_UNITS})|\s(?:m|s|g))\.?(?:\s*\^\s*\{{?[23]\}}?|²|³)?\s*$", re.IGNORECASE
)
# the same unit words before a comma inside a list ("35 cm, 4", "2 hours, 3 hours")
_ELEMENT_UNIT = re.compile(rf"([\d}}])(?:\s*(?:{_UNITS})|\s(?:m|s|g))(?=\s*[,;])", re.IGNORECASE)
_DEGREE_WORDS = re.compile(
    r"\\(?:text|mbox|mathrm)\s*\{\s*(?:degrees?|deg)\s*\}|(?<=[\d}\s])(?:degrees?|deg)\b", re.IGNORECASE
)
_INFINITY_WORDS = re.compile(r"(?<![\\A-Za-z])(?:infinity|inf)(?![A-Za-z])", re.IGNORECASE)
_EMPTY_SET = re.compile(r"\\(?:varnothing|emptyset)(?![a-zA-Z])|\\\{\s*\\\}")
_DEGREE_MARKS = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|°|\\degree|\^\s*\{\s*o\s*\}|\\circ")
_PERCENT = re.compile(
    r"\s*\\?%|\s*\\(?:text|mbox|mathrm)\s*\{\s*(?:percent(?:age)?|pct|per\s*cent)\s*\}"
    r"|\s*\b(?:percentage\s+points?|percent(?:age)?s?|pct|per\s+cent)\b",
    re.IGNORECASE,
)
# Currency signs and codes around an amount ("1,000.99€", "USD 5"); `$` is handled as a delimiter.
_CURRENCY = re.compile(r"[€£¥₹]|\\(?:euro|pounds|yen)(?![a-zA-Z])|\b(?:USD|EUR|GBP|JPY|CNY|INR|RMB)\b")
# A unit inside \mathrm{} or \text{}: "~m/s", "km/h", "m^2", "\,\mathrm{cm}" (tildes are spacing).
_UNIT_CONTENT = re.compile(r"^[A-Za-z]{1,6}(?:\s*/\s*[A-Za-z]{1,6})?(?:\^\{?-?\d\}?)?$")
# Left behind where a dataset stripped a unit: "4\mathrm{~}/\mathrm{}" becomes "4 /".
# "(1) 5; (2) 7": part labels of a multi-part answer
_PART_LABEL = re.compile(r"(?:^|(?<=[\s;,]))\((?:[1-9]|i{1,3}|iv|[a-d])\)\s*")
# "1,000.99m²": an area or volume unit written with the power sign, touching the number
_SQUARE_UNIT = re.compile(r"(?<=\d)\s*(?:m|cm|mm|km|ft|in|yd)[²³](?![A-Za-z\d])")
# "3\mathrm{~km}/\mathrm{h}": one unit written in two pieces
_SPLIT_UNIT = re.compile(r"\\mathrm\s*\{([^{}]*)\}\s*/\s*\\mathrm\s*\{([^{}]*)\}")
_DANGLING_SLASH = re.compile(r"(?<=[\d}])\s*/\s*(?=,|;|$)")
_OR_AND = re.compile(r"\s+(?:or|and)\s+|(?<=[\d)}])\s*or\s*(?=[(\dA-Za-z\\-])")
# Escaped twice ("\\frac" where "\frac" was meant), as JSON dumps or Python literals leave it;
# `\\` before a letter is no line break in an answer.
_DOUBLE_ESCAPE = re.compile(r"\\\\(?=[a-zA-Z])")
# "\quadx_{2}": a spacing command run into the next name
_GLUED_SPACE = re.compile(r"\\(quad|qquad)(?=[a-zA-Z])")
# One or two plain words after a number: "7 apples", "12 blue marbles" (not math such as "5 sin x").
_TRAILING_WORDS = re.compile(
    r"(?<=\d)\s+(?!(?:sin|cos|tan|log|ln|exp|sqrt)\b)[A-Za-z]{3,}(?:\s+[A-Za-z]{3,})?$"
)
_THOUSANDS_SEP = re.compile(r"(?<=\d)(?:,\\!\s*|\s*\{\s*,\s*\}\s*|,\\,|\\,|\\;|\\ |\\!)(?=\d{3}(?!\d))")
# (a thousands group never follows a leading 0: "0,125" is a decimal comma or a list)
_COMMA_NUMBER = re.compile(r"^-?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?$")
_SPACE_NUMBER = re.compile(r"^-?[1-9]\d{0,2}(?: \d{3})+(?:\.\d+)?$")
_PHANTOM = re.compile(r"\\(?:h|v)?phantom\s*(?:\{[^{}]*\}|\S)")
_LEADING_RELATION = re.compile(r"^\s*(?:\\approx|\\sim|=)\s*")
_SIZING = re.compile(r"\\(?:left|right|big|Big|bigg|Bigg|bigl|bigr|Bigl|Bigr|biggl|biggr)(?![a-zA-Z])\s*\.?")
_SPACING = re.compile(r"(?<!\\)\\(?:[,;:! ]|(?:quad|qquad)(?![a-zA-Z]))|~")
_STYLE = re.compile(r"\\(?:displaystyle|textstyle|scriptstyle)(?![a-zA-Z])")
_UNICODE = {
    "−": "-",
    "–": "-",
    "×": "\\times ",
    "·": "\\cdot ",
    "÷": "\\div ",
    "π": "\\pi ",
    "√": "\\sqrt",
    "∞": "\\infty ",
    "≤": "\\le ",
    "≥": "\\ge ",
    "≠": "\\ne ",
    "∪": "\\cup ",
    "∩": "\\cap ",
    "∈": "\\in ",
    "²": "^{2}",
    "³": "^{3}",
    "≈": "\\approx ",
    "±": "\\pm ",
    "∓": "\\mp ",
    "\u00a0": " ",
    "\u2009": " ",
    "\u202f": " ",
}
_UNICODE_RE = re.compile("|".join(map(re.escape, _UNICODE)))
_FRACTION_COMMANDS = re.compile(r"\\[dtc]frac(?![a-zA-Z])")
_BINOM_COMMANDS = re.compile(r"\\[dt]binom(?![a-zA-Z])")
_ARTICLES = re.compile(r"^(?:the|a|an)\s+")


@dataclass(frozen=True)
class Cleaned:
    """A canonical answer: `latex` for the math parser, `words` when the answer is plain text."""

    latex: str
    words: str | None = None

    @property
    def key(self) -> str:
        """A string equal for answers written the same way up to spacing (the fast path)."""
        if self.words is not None:
            return "text:" + self.words
        return _compact(self.latex)


def _compact(latex: str) -> str:
    latex = re.sub(r"\s+", " ", latex).strip()
    # keep a space only between two letters ("\pi r"); drop it elsewhere ("x + 1" -> "x+1")
    return re.sub(r"(?<![A-Za-z]) | (?![A-Za-z])", "", latex)


def text_key(words: str) -> str:
    """Case-, spacing- and punctuation-insensitive form of a text answer."""
    key = re.sub(r"[^0-9a-z]+", " ", words.casefold()).strip()
    return _ARTICLES.sub("", key)


def strip_delimiters(answer: str) -> str:
    """Remove math delimiters around the whole answer, an enclosing \\boxed{}, and stray `$`."""
    s = answer.strip()
    changed = True
    while changed and s:
        changed = False
        for opening, closing in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
            if s.startswith(opening) and s.endswith(closing) and len(s) >= len(opening) + len(closing):
                s = s[len(opening) : len(s) - len(closing)].strip()
                changed = True
        if s.startswith(("\\boxed", "\\fbox")):
            boxed = find_boxed(s)
            if boxed is not None and boxed != s:
                s, changed = boxed, True
    s = s.replace("\\$", "").replace("$", "")
    return s.strip()


def _text_commands(s: str) -> tuple[str, list[str]]:
    """Resolve \\text{}-like commands: separators become commas, words are set aside, math is unwrapped.

    Returns the remaining LaTeX and the words that were set aside (units, or a text answer).
    """
    out: list[str] = []
    words: list[str] = []
    pos = 0
    while True:
        match = _TEXT_COMMANDS.search(s, pos)
        if match is None:
            out.append(s[pos:])
            break
        close = matching_brace(s, match.end() - 1)
        if close < 0:
            out.append(s[pos:])
            break
        out.append(s[pos : match.start()])
        content = s[match.end() : close]
        after = close + 1
        unit = content.replace("~", " ").replace("\\,", " ").strip()
        is_word = _WORDS.fullmatch(content.strip()) is not None or (
            len(unit) > 1 and _UNIT_CONTENT.fullmatch(unit) is not None
        )
        single_letter = len(content.strip()) == 1
        if _SEPARATOR_WORDS.match(content):
            out.append(",")
        elif not content.replace("~", "").replace("/", "").strip():
            pass
        elif is_word and not (single_letter and match.group(1) in _MATH_STYLE):
            words.append(content.strip())
            power = _UNIT_POWER.match(s, after)
            if power:
                after = power.end()
            out.append(" ")
        else:
            out.append(content)
        pos = after
    return "".join(out), words


def clean_answer(answer: str) -> Cleaned:
    """Canonical form of an answer string (reference or extracted response answer)."""
    s = _DOUBLE_ESCAPE.sub(lambda _: "\\", answer)
    s = _GLUED_SPACE.sub(lambda m: f"\\{m.group(1)} ", s)
    s = strip_delimiters(s)
    s = _SQUARE_UNIT.sub("", s)
    s = _UNICODE_RE.sub(lambda m: _UNICODE[m.group(0)], s)
    s = _CURRENCY.sub(" ", s)
    s = _THOUSANDS_SEP.sub("", s)
    s = _SIZING.sub("", s)
    s = _PHANTOM.sub("", s)
    s = _STYLE.sub("", s)
    s = _LEADING_RELATION.sub("", s)
    s = s.replace("\\langle", "(").replace("\\rangle", ")")
    s = s.replace("\\lbrace", "\\{").replace("\\rbrace", "\\}")
    # (lambdas: the replacements are literal LaTeX, not templates with backslash escapes)
    s = _DEGREE_WORDS.sub(lambda _: "^\\circ", s)
    s = _DEGREE_MARKS.sub(lambda _: "^\\circ", s)
    s = _INFINITY_WORDS.sub(lambda _: "\\infty ", s)
    s = _EMPTY_SET.sub(lambda _: "\\emptyset ", s)
    s = _PERCENT.sub(lambda _: "\\%", s)
    s = _SPLIT_UNIT.sub(lambda m: f"\\mathrm{{{m.group(1)}/{m.group(2)}}}", s)
    s, words = _text_commands(s)
    s = _SPACING.sub(" ", s)
    s = _FRACTION_COMMANDS.sub(lambda _: "\\frac", s)
    s = _BINOM_COMMANDS.sub(lambda _: "\\binom", s)
    s = re.sub(r"\s+", " ", s).strip()
    if not s.strip(" ,.;"):
        # only words: a text answer such as \text{Evelyn} or "east"
        return Cleaned(s, text_key(" ".join(words))) if words else Cleaned(s)
    s = _DANGLING_SLASH.sub("", s)
    if s.startswith("(") and len(_PART_LABEL.findall(s)) >= 2:  # "(1) 5 (2) 7": one answer per part
        s = _PART_LABEL.sub(", ", s).strip(" ,")
    if not _WORDS.fullmatch(s):
        s = _OR_AND.sub(", ", s)  # "W(x)=1 or W(x)=-1", "(11,7) or (7,11)": several answers
    s = _ELEMENT_UNIT.sub(r"\1", s)
    for _ in range(2):
        s = _TRAILING_UNIT.sub(r"\1", s).strip()
        s = _TRAILING_WORDS.sub("", s).strip()
    s = s.rstrip(" .;,").lstrip(" ,;")
    if _COMMA_NUMBER.match(s):
        s = s.replace(",", "")
    elif _SPACE_NUMBER.match(s):
        s = s.replace(" ", "")
    if _WORDS.fullmatch(s) and re.search(r"[A-Za-z]{3}", s):
        # bare words with a run of 3+ letters ("east", "no solution") are text; "xy" reads as math
        return Cleaned(s, text_key(s))
    return Cleaned(s)
