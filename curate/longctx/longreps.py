"""LongRePS checks for self-sampled reasoning paths over a long context.

A path (one sampled response to context + question) is kept only when
1. its answer is right: exact match and token F1 against the reference (SQuAD-style normalisation:
   case, punctuation, articles, spaces), F1 >= `min_f1` (1.0, as in the paper);
2. it is grounded: it quotes at least `min_quotes` excerpts and every quoted excerpt appears in
   the context after normalisation (Unicode, case, punctuation and spacing ignored; an excerpt
   elided with "..." must have its pieces appear in order);
3. optionally, a judge rates its reasoning consistent (score in [0, 1] >= `judge_threshold`).

Among the paths of one question that pass, the best is kept (see `best_key`).
"""

from __future__ import annotations

import json
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from curate.think import split_reasoning

# judge(problem, reasoning, answer) -> consistency score in [0, 1]
Judge = Callable[[str, str, str], float]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)
_ANSWER_LINE = re.compile(
    r"(?:final\s+answer|the\s+answer\s+is|answer)\s*(?:is)?\s*[:：]\s*(.+)|the\s+(?:final\s+)?answer\s+is\s+(.+)",
    re.IGNORECASE,
)
_QUOTES = (
    re.compile(r"<quote>(.*?)</quote>", re.IGNORECASE | re.DOTALL),
    re.compile(r"\"([^\"\n]+)\""),
    re.compile(r"\u201c([^\u201d]+)\u201d"),  # “curly”
    re.compile(r"\u00ab([^\u00bb]+)\u00bb"),  # «guillemets»
)
_ELLIPSIS = re.compile(r"\.\.\.|\u2026|\[\s*\.\.\.\s*\]")
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


# --- answer correctness ----------------------------------------------------------------------
def normalize_answer(text: str) -> str:
    """SQuAD-style: lower case, no punctuation, no articles, single spaces."""
    text = unicodedata.normalize("NFKC", text).lower().translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def token_f1(prediction: str, reference: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def references_of(reference: str) -> list[str]:
    """The acceptable answers: a JSON list of them, or the reference itself."""
    text = reference.strip()
    if text.startswith("["):
        try:
            values = json.loads(text)
        except ValueError:
            values = None
        if isinstance(values, list) and values:
            return [str(v) for v in values]
    return [reference]


def answer_scores(prediction: str, reference: str) -> tuple[bool, float]:
    """(exact match, F1), each the best over the acceptable answers."""
    refs = references_of(reference)
    em = any(normalize_answer(prediction) == normalize_answer(r) for r in refs)
    return em, max(token_f1(prediction, r) for r in refs)


def _boxed(text: str) -> str | None:
    """Content of the last \\boxed{...}, braces balanced."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed")
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1 : j]
    return None


def final_part(response: str) -> str:
    """What the path says outside its reasoning (curate.think's rule)."""
    return split_reasoning(response).answer


def extract_answer(response: str | None, pattern: str | None = None) -> str | None:
    """The path's final answer: `pattern` (regex, group 1 if any) when given; else the last
    \\boxed{}; else the last "Answer: ..." / "the answer is ..." line; else the last non-empty line."""
    if not response:
        return None
    text = final_part(response)
    if pattern:
        matches = list(re.finditer(pattern, text))
        if not matches:
            return None
        last = matches[-1]
        return (last.group(1) if last.re.groups else last.group(0)).strip() or None
    boxed = _boxed(text)
    if boxed is not None:
        return boxed.strip() or None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        match = _ANSWER_LINE.search(line)
        if match:
            return (match.group(1) or match.group(2)).strip(" *.") or None
    return lines[-1].strip(" *") if lines else None


# --- source faithfulness ---------------------------------------------------------------------
def match_normal(text: str) -> str:
    """Text for excerpt matching: NFKC, case-folded, every run of non-word characters one space."""
    return " " + " ".join(_NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).split()) + " "


def extract_quotes(text: str, min_words: int = 3) -> list[str]:
    """Quoted excerpts (<quote> tags, straight or curly double quotes, guillemets) of at least
    `min_words` words, in order of appearance, without repeats; shorter quotes are names, not evidence."""
    found: list[tuple[int, str]] = []
    for pattern in _QUOTES:
        found += [(m.start(), m.group(1).strip()) for m in pattern.finditer(text)]
    seen, quotes = set(), []
    for _, quote in sorted(found):
        key = match_normal(quote)
        if len(key.split()) >= min_words and key not in seen:
            seen.add(key)
            quotes.append(quote)
    return quotes


def quote_in_context(quote: str, normal_context: str) -> bool:
    """Whether the excerpt's pieces (split at ellipses) appear in the normalised context, in order."""
    position = 0
    for piece in _ELLIPSIS.split(quote):
        needle = match_normal(piece)
        if not needle.strip():
            continue
        found = normal_context.find(needle, position)
        if found < 0:
            return False
        position = found + len(needle) - 1
    return True


# --- one path --------------------------------------------------------------------------------
@dataclass
class PathCheck:
    """The checks of one path; `reason` is None while it passes."""

    answer: str | None = None
    em: bool | None = None
    f1: float | None = None
    quotes: int = 0
    missing: int = 0
    judge: float | None = None
    reason: str | None = None
    detail: str | None = None


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def check_path(
    response: str | None,
    reference: str | None,
    context: str | None,
    *,
    min_f1: float = 1.0,
    min_quotes: int = 1,
    min_quote_words: int = 3,
    answer_pattern: str | None = None,
    normal_context: str | None = None,
) -> PathCheck:
    """Answer correctness, then source faithfulness, of one path (the judge comes after, if any)."""
    check = PathCheck()
    if not reference or not reference.strip():
        check.reason, check.detail = "no_reference", "the question has no reference answer"
        return check
    check.answer = extract_answer(response, answer_pattern)
    if check.answer is None:
        check.reason, check.detail = "no_answer", "no final answer found in the response"
        return check
    check.em, check.f1 = answer_scores(check.answer, reference)
    if check.f1 < min_f1:
        check.reason = "wrong_answer"
        check.detail = f"F1 {check.f1:.2f} < {min_f1:g} (EM {int(check.em)}): answer {_short(check.answer)!r}, reference {_short(reference)!r}"
        return check
    quotes = extract_quotes(response or "", min_quote_words)
    check.quotes = len(quotes)
    if len(quotes) < min_quotes:
        check.reason = "no_evidence"
        check.detail = f"{len(quotes)} quoted excerpt(s) of >= {min_quote_words} words, {min_quotes} required"
        return check
    haystack = normal_context if normal_context is not None else match_normal(context or "")
    missing = [q for q in quotes if not quote_in_context(q, haystack)]
    check.missing = len(missing)
    if missing:
        check.reason = "unfaithful_quote"
        check.detail = (
            f"{len(missing)}/{len(quotes)} quote(s) not in the context, first: {_short(missing[0])!r}"
        )
    return check


def best_key(check: PathCheck, reasoning_chars: int, row_id: int) -> tuple:
    """Sort key of a passing path, best first: highest judge score (when judged), then F1, then
    exact match, then the most verified quotes (better grounded), then the shortest reasoning,
    then the earliest row (so the choice is deterministic)."""
    judge = check.judge if check.judge is not None else 0.0
    return (-judge, -(check.f1 or 0.0), not check.em, -check.quotes, reasoning_chars, row_id)


def rank_paths(groups: Sequence[str | None], keys: Sequence[tuple | None]) -> list[int | None]:
    """Rank (1 = best) of each passing path within its group; None for paths that failed."""
    by_group: dict[str | None, list[int]] = {}
    for index, key in enumerate(keys):
        if key is not None:
            by_group.setdefault(groups[index], []).append(index)
    ranks: list[int | None] = [None] * len(keys)
    for members in by_group.values():
        for rank, index in enumerate(sorted(members, key=lambda i: keys[i]), start=1):  # type: ignore[arg-type,return-value]
            ranks[index] = rank
    return ranks
