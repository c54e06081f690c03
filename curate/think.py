"""The one rule that splits a teacher response into its reasoning and its answer.

    <think>reasoning</think>answer            R1, QwQ, most distilled sets
    reasoning</think>answer                    R1's chat template puts `<think>` in the prompt
    <think>reasoning, never closed             a generation cut inside its reasoning: no answer
    <|begin_of_thought|>…<|end_of_thought|>    OpenThoughts / Bespoke-Stratos markers

The reasoning runs from the first opening marker to the *last* closing marker, and the answer is
what lies outside that span (text before the opening marker, then text after the last closing
one). So a response with two `</think>` keeps the text between them in its reasoning, and every
character of the response is in one part or the other. OpenThoughts' solution markers
(`<|begin_of_solution|>`) and `<answer>` tags are removed from the answer; both parts are stripped.

The rule runs in Python (`split_reasoning`, one string) and in Polars (`reasoning_expr`,
`answer_expr`, a whole batch in Rust, built for speed from the same markers);
tests/curate/test_think.py checks that the two agree, on hand-written and on generated responses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the verifiers' sandboxed workers use split_reasoning and must not load Polars
    import polars as pl

OPEN = r"<think>|<\|begin_of_thought\|>"
CLOSE = r"</think>|<\|end_of_thought\|>"
ANSWER_WRAPPERS = r"(?i)<\|begin_of_solution\|>|<\|end_of_solution\|>|</?answer>"
_OPEN_RE, _CLOSE_RE = re.compile(OPEN, re.IGNORECASE), re.compile(CLOSE, re.IGNORECASE)
_WRAPPERS_RE = re.compile(ANSWER_WRAPPERS)


@dataclass(frozen=True)
class Parts:
    reasoning: str | None  # None: the response has no reasoning markers at all
    answer: str  # what the user sees ("" for no response, or a reasoning never closed)
    closed: bool  # False for `<think>` without a closing marker


def split_reasoning(response: str | None) -> Parts:
    """Reasoning and answer of one response (module docstring)."""
    if response is None:
        return Parts(None, "", True)
    closes = list(_CLOSE_RE.finditer(response))
    end = closes[-1].start() if closes else len(response)
    opening = _OPEN_RE.search(response, 0, end)  # the first opening marker before the last close
    start, before = (opening.end(), response[: opening.start()]) if opening else (0, "")
    if closes:
        return Parts(response[start:end].strip(), _clean_answer(before + response[closes[-1].end() :]), True)
    if opening:
        return Parts(response[start:].strip(), _clean_answer(before), False)
    return Parts(None, _clean_answer(response), True)


def reasoning_of(response: str | None) -> str | None:
    """The reasoning of one response, or None when the teacher gave none."""
    return split_reasoning(response).reasoning


def _clean_answer(text: str) -> str:
    return _WRAPPERS_RE.sub("", text).strip()


def _parts(text: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr, pl.Expr]:
    """(before, reasoning, after, has_close) of a string column, by the rule of `split_reasoning`.

    Built from anchored replaces and char slices rather than the capture groups of the Python
    patterns: Rust regex captures are about 5x slower over long traces, and this runs on every row.
    `after` is the text after the last closing marker, `inner` the text before it; the opening
    marker that counts is the first one in `inner` (the first one with a closing marker after it).
    """
    import polars as pl

    has_close = text.str.contains(rf"(?i){CLOSE}")
    after = text.str.replace(rf"(?is)^.*(?:{CLOSE})", "")
    head = text.str.slice(0, text.str.len_chars() - after.str.len_chars())
    inner = pl.when(has_close).then(head.str.replace(rf"(?is)(?:{CLOSE})$", "")).otherwise(text)
    has_open = inner.str.contains(rf"(?i){OPEN}")
    before = pl.when(has_open).then(inner.str.replace(rf"(?is)(?:{OPEN}).*$", "")).otherwise(pl.lit(""))
    reasoning = (
        pl.when(has_open)
        .then(inner.str.replace(rf"(?is)^.*?(?:{OPEN})", ""))
        .when(has_close)
        .then(inner)
        .otherwise(pl.lit(None, pl.String))
    )
    return before, reasoning, after, has_close


def reasoning_expr(response: str | pl.Expr = "response") -> pl.Expr:
    """`split_reasoning(...).reasoning` of a string column."""
    import polars as pl

    _, reasoning, _, _ = _parts(pl.col(response) if isinstance(response, str) else response)
    return reasoning.str.strip_chars()


def answer_expr(response: str | pl.Expr = "response") -> pl.Expr:
    """`split_reasoning(...).answer` of a string column ("" for a null response).

    The hot path (quality and shard run it on every row), so it avoids `_parts`' slices: the
    first opening marker counts when it starts before the last closing marker ends (markers
    cannot overlap, so that is the same as starting before the last closing marker starts).
    """
    import polars as pl

    text = pl.col(response) if isinstance(response, str) else response
    has_close = text.str.contains(rf"(?i){CLOSE}")
    has_open = text.str.contains(rf"(?i){OPEN}")
    after = text.str.replace(rf"(?is)^.*(?:{CLOSE})", "")
    before_open = text.str.replace(rf"(?is)(?:{OPEN}).*$", "")
    open_counts = has_open & (before_open.str.len_chars() < text.str.len_chars() - after.str.len_chars())
    answer = (
        pl.when(has_close)
        .then(pl.concat_str([pl.when(open_counts).then(before_open).otherwise(pl.lit("")), after]))
        .when(has_open)
        .then(before_open)
        .otherwise(text)
    )
    return answer.str.replace_all(ANSWER_WRAPPERS, "").str.strip_chars().fill_null("")


def unclosed_expr(response: str | pl.Expr = "response") -> pl.Expr:
    """True where an opening marker is never closed (`split_reasoning(...).closed` is False)."""
    import polars as pl

    text = pl.col(response) if isinstance(response, str) else response
    return (text.str.contains(rf"(?i){OPEN}") & ~text.str.contains(rf"(?i){CLOSE}")).fill_null(False)


def has_reasoning(reasoning: str = "reasoning") -> pl.Expr:
    """The row has non-blank reasoning."""
    import polars as pl

    return pl.col(reasoning).is_not_null() & (pl.col(reasoning).str.strip_chars().str.len_chars() > 0)


def assistant_expr(reasoning: str = "reasoning", response: str = "response") -> pl.Expr:
    """The assistant turn a student is trained on: `<think>\\n{reasoning}\\n</think>\\n\\n{answer}`;
    rows with no reasoning keep their response as it is."""
    import polars as pl

    framed = pl.concat_str(
        [pl.lit("<think>\n"), pl.col(reasoning), pl.lit("\n</think>\n\n"), answer_expr(response)]
    )
    return pl.when(has_reasoning(reasoning)).then(framed).otherwise(pl.col(response).fill_null(""))
