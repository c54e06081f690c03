"""Comparison normalisation shared by exact_dedup, near_dedup and decontaminate.

Two problems that a reader would call "the same" should normalise to the same text: Unicode
compatibility forms (NFKC), typographic quotes and dashes, case, LaTeX spelling variants
(`\\dfrac`/`\\tfrac` -> `\\frac`, `\\left(` -> `(`, `\\le` -> `\\leq`, `\\[`/`$$` -> `$`, spacing
commands), the generic instructions that distillation sets append ("Please reason step by step,
and put your final answer within \\boxed{}.") or prepend ("Problem:"), and spacing. The result is a
token sequence joined by single spaces, so `x+y` and `x + y` compare equal. Numbers are kept as
they are: a changed number changes the answer.

This text is only ever used to compare; the stages keep the row's own text intact.

Everything is a Polars expression so a whole batch is normalised in Rust; `normalize_text` is the
same transformation for one string (tests, benchmarks).
"""

from __future__ import annotations

import polars as pl

# Typographic characters NFKC leaves alone but that vary between copies of one problem.
_LOOKALIKES = {
    "'": "\u2018\u2019\u201a\u201b\u2032\u00b4`",
    '"': "\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb",
    "-": "\u2010\u2011\u2012\u2013\u2014\u2212",
    "/": "\u2044",
    " ": "\u00a0\u2009\u202f",
}
_SYMBOLS = {
    "\u00d7": "\\times ",
    "\u00f7": "\\div ",
    "\u2264": "\\leq ",
    "\u2265": "\\geq ",
    "\u2260": "\\neq ",
}
_CHAR_MAP = {char: plain for plain, chars in _LOOKALIKES.items() for char in chars}
_CHAR_MAP.update(_SYMBOLS)

# LaTeX spellings that render alike. Applied in order, after lowercasing, with Rust regex syntax.
_LATEX_RULES: tuple[tuple[str, str], ...] = (
    (r"\\[dt]frac", r"\frac"),
    (r"\\[dt]binom", r"\binom"),
    (r"\\frac\s*(\d)\s*(\d)", r"\frac{$1}{$2}"),  # \frac12 -> \frac{1}{2}
    (r"\\frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}", r" $1 / $2 "),  # \frac{1}{29} -> 1/29
    (r"\\(?:left|right|bigl|bigr|biggl|biggr|big|bigg)\b\s*\.?", ""),
    (r"\\(?:displaystyle|textstyle|limits|nolimits)\b", ""),
    (r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|mathit|operatorname|mbox|emph)\b", ""),
    (r"\\(?:le|leqslant)\b", r"\leq"),
    (r"\\(?:ge|geqslant)\b", r"\geq"),
    (r"\\(?:ne)\b", r"\neq"),
    (r"\\(?:[lc]dots|dotsc|dotsb)\b", r"\dots"),
    (r"\\(?:[,;:! ]|quad\b|qquad\b)", " "),
    (r"\$\$|\\\[|\\\]|\\\(|\\\)", "$"),
    (r"~", " "),
)

# Generic instructions that sources add around the same problem. Prefixes are labels and
# "solve this" lead-ins; suffixes are answer-format instructions that never change the problem.
_PREFIX = (
    r"^(?:\s*(?:(?:problem|question|q|task|exercise|prompt|input|user)\s*\d*\s*[:.)]"
    r"|(?:please\s+)?solve\s+the\s+following\s+(?:math\s+|mathematical\s+)?(?:problem|question)"
    r"(?:\s+step\s+by\s+step)?\s*[:.]?))+\s*"
)
_SUFFIX_PARTS = (
    r"(?:(?:let'?s|please)\s+)?(?:reason|think|solve\s+it|work)\s+step\s+by\s+step[^.$]*\.?",
    r"(?:and\s+)?(?:please\s+)?(?:put|place|write|give|return|present|enclose|output|provide)\s+(?:your|the)"
    r"\s+final\s+(?:answer|response)[^$]*?\\boxed\s*\{\s*\}\s*\.?",
    r"show\s+(?:all\s+)?your\s+work\.?",
)
_SUFFIX = r"(?:\s*(?:" + "|".join(_SUFFIX_PARTS) + r"))+\s*$"

# A token is a LaTeX command, a run of letters, a run of digits, or any other single character.
TOKEN_PATTERN = r"\\[a-z]+|[^\W\d_]+|\d+|\S"
# Words for n-gram decontamination: letter or digit runs (LaTeX command names count as words).
WORD_PATTERN = r"[^\W_]+"
# What a problem says, for math-aware near-dedup: words (LaTeX command names included), numbers,
# relations and signs. Changing one of them changes the problem; layout symbols do not count.
CONTENT_PATTERN = r"[^\W\d_]+|\d+|[<>=+\-]"


# Rust regex's `\s` (Unicode White_Space), as characters: exact_dedup's key drops them with one
# literal pass instead of a regex (tests/curate/test_dedup_text.py checks the set).
WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + "\u2028\u2029\u202f\u205f\u3000"
)
# Math delimiters and braces are layout: "$5$" and "5", "x^{2}" and "x^2" are the same text.
_LAYOUT = "${}"


def _canonical_chars(column: str | pl.Expr) -> pl.Expr:
    """NFKC, case, characters, LaTeX, instructions: every rule of _canonical but the layout one."""
    expr = pl.col(column) if isinstance(column, str) else column
    # NFKC is the identity on ASCII, which most problems are: only pay for it where it can matter
    expr = pl.when(expr.str.contains(r"[^\x00-\x7f]")).then(expr.str.normalize("NFKC")).otherwise(expr)
    expr = expr.str.to_lowercase()
    expr = expr.str.replace_many(list(_CHAR_MAP), list(_CHAR_MAP.values()))
    for pattern, replacement in _LATEX_RULES:
        expr = expr.str.replace_all(pattern, replacement)
    return expr.str.replace(_SUFFIX, "").str.replace(_PREFIX, "")


def _canonical(column: str | pl.Expr) -> pl.Expr:
    """Every rule but the tokenisation: NFKC, case, characters, LaTeX, instructions, layout."""
    return _canonical_chars(column).str.replace_all(f"[{_LAYOUT}]", " ")


def normalize_expr(column: str | pl.Expr) -> pl.Expr:
    """The comparison form of a text column: normalised tokens joined by single spaces."""
    return _canonical(column).str.extract_all(TOKEN_PATTERN).list.join(" ")


def exact_key_expr(column: str | pl.Expr) -> pl.Expr:
    """What exact_dedup compares: the normalised text without any whitespace (cheaper than
    tokenising; equal token sequences give equal keys, so spacing never separates two copies).
    The layout characters, which _canonical turns into spaces, go in the same literal pass."""
    dropped = list(WHITESPACE + _LAYOUT)
    return _canonical_chars(column).str.replace_many(dropped, [""] * len(dropped))


def normalize_text(text: str | None) -> str | None:
    """`normalize_expr` for one string."""
    return pl.select(normalize_expr(pl.lit(text, pl.String))).item()


def content_expr(normalized: str | pl.Expr) -> pl.Expr:
    """The content tokens (CONTENT_PATTERN) of a normalised text column, in order."""
    expr = pl.col(normalized) if isinstance(normalized, str) else normalized
    return expr.str.extract_all(CONTENT_PATTERN)


def light_normalize_expr(column: str | pl.Expr) -> pl.Expr:
    """For comparing responses: NFKC and collapsed whitespace, nothing that changes the words."""
    expr = pl.col(column) if isinstance(column, str) else column
    return expr.str.normalize("NFKC").str.replace_all(r"\s+", " ").str.strip_chars()
