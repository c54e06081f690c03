"""quality: drop traces a student should not learn from, each for its own reason.

Checks, in order (the first that fails names the row's reason):

    empty_response          no response and no reasoning at all (a prompt with no generation)
    think_unclosed          `<think>` opened and never closed (the generation stopped inside it)
    think_missing           no reasoning where reasoning is required (option `think`)
    empty_reasoning         `<think></think>` with nothing inside
    truncated               the teacher hit its token limit (meta `finish_reason: length`,
                            `is_reasoning_complete: false`, or `max_new_tokens` reached)
    answer_only_in_reasoning  the final answer (\\boxed{}, a code block, "final answer") appears in
                            the reasoning but not in the answer the user sees
    no_final_answer         no answer after the reasoning (with `require_final_answer`, also an
                            answer with no final-answer marker at all)
    repetition              degenerate loops: the share of repeated word n-grams, or one paragraph
                            repeated many times
    language_mix            letters of a script the problem does not use (R1-Zero's English/Chinese mix)
    too_short / too_long    token-length bounds, counted with the target tokenizer

`think: auto` (the default) requires reasoning only for inputs that mostly have it: a teacher-trace
file whose rows lost their `<think>` is broken, while a human solution set (MATH) never had one.
It is decided per input file (from the row's origin), so two inputs that share a `source` name, or
a `--source` given to all of them, do not decide for each other.

Token counts use the tokenizer given by name or local path (`tokenizer`); without one they are a
whitespace word count, which undercounts BPE tokens (roughly x1.3 for English, more for LaTeX).
The stage adds `n_tokens` (prompt + assistant turn), `prompt_tokens` and `completion_tokens`.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import numpy as np
import polars as pl

from curate.rows import count_tokens, load_tokenizer, tokenizer_checksum
from curate.stage import Stage, StageContext, decide
from curate.think import answer_expr, assistant_expr, has_reasoning, unclosed_expr

THINK_POLICIES = ("require", "auto", "optional")
# Markers of a final answer a reader can find: boxed answers, code blocks, "final answer", GSM8K's ####.
FINAL_ANSWER = r"(?i)\\boxed\s*\{|\\fbox\s*\{|```|final\s+answer|answer\s+is\b|\banswer\s*:|(?m:^####\s)"
# Scripts whose letters count for language mixing. Greek is left out: mathematics uses its letters.
SCRIPTS = (
    "Latin",
    "Han",
    "Hiragana",
    "Katakana",
    "Hangul",
    "Cyrillic",
    "Arabic",
    "Hebrew",
    "Devanagari",
    "Thai",
)
_TRUNCATION_FLAGS = (
    ("$.finish_reason", "length"),
    ("$.finish_reasons", "length"),
    ("$.stop_reason", "length"),
    ("$.is_reasoning_complete", "false"),
    ("$.truncated", "true"),
)


def _input_of() -> pl.Expr:
    """The input file a row came from: its origin without the line or record number."""
    return pl.col("origin").str.replace(r"[:#]\d+$", "")


# Row checks that need Python -------------------------------------------------------------------


def _ngrams(text: str | None, n: int) -> list[tuple[str, ...]]:
    words = (text or "").split()
    return list(zip(*(words[i:] for i in range(n)), strict=False))


def _paragraphs(text: str | None, min_chars: int) -> Counter[str]:
    """How often each paragraph of at least `min_chars` occurs (think tags end a paragraph too)."""
    paragraphs = (p.strip() for p in re.split(r"\n\s*\n|</?think>", text or ""))
    return Counter(p for p in paragraphs if len(p) >= min_chars)


def ngram_repeat_ratio(text: str | None, n: int) -> float:
    """Share of word n-grams that repeat an earlier one: ~0 for prose, near 1 for a loop."""
    grams = _ngrams(text, n)
    if len(grams) < n + 1:  # fewer than 2n words
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


# Python's str.isspace() characters, which str.split() splits on (Rust's \s lacks \x1c-\x1f), and
# those of them that are not the plain space.
_SPACE = r"\t-\r\x1c-\x20\x85\xa0\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}"
_ODD_SPACE = _SPACE.replace(r"\x1c-\x20", r"\x1c-\x1f")
_GRAM_BASE = np.uint64(0x100000001B3)


def ngram_repeat_ratios(texts: pl.Series, n: int, limit: float) -> pl.Series:
    """`ngram_repeat_ratio` of every text, exact wherever it exceeds `limit` (where a row is dropped
    and its detail shows it), in one vectorised pass: the n-grams are counted as 64-bit hashes of
    their words, and the texts whose hashed ratio exceeds `limit` are recounted in Python. Hashing
    can only merge distinct n-grams, so a hashed ratio is never below the true one: a text at or
    under the limit by its hashes is at or under it in truth."""
    # Words as str.split() gives them: every run of spaces made one plain space, then split on it
    # (a regex for the words themselves costs 3x, matching at every word).
    spaced = texts.fill_null("").str.replace_all(f"[{_SPACE}]{{2,}}|[{_ODD_SPACE}]", " ").str.strip_chars(" ")
    words = spaced.str.split(" ")
    counts = (words.list.len() - (spaced == "")).cast(pl.Int64).to_numpy()  # "" splits into [""]
    flat = words.explode()
    hashes = flat.filter(flat != "").hash(0).to_numpy()
    grams = np.maximum(counts - n + 1, 0)
    unique = np.zeros(len(counts), np.int64)
    windows = len(hashes) - n + 1
    if windows > 0:
        rolling = np.zeros(windows, np.uint64)
        for k in range(n):  # wraps modulo 2**64, as a hash may
            rolling = rolling * _GRAM_BASE + hashes[k : k + windows]
        row = np.repeat(np.arange(len(counts)), counts)[:windows]
        inside = np.arange(windows) - (np.cumsum(counts) - counts)[row] + n <= counts[row]
        per_row = (
            pl.DataFrame({"row": row[inside], "gram": rolling[inside]})
            .group_by("row")
            .agg(pl.col("gram").n_unique())
        )
        unique[per_row["row"].to_numpy()] = per_row["gram"].to_numpy()
    ratios = np.where(grams >= n + 1, 1.0 - unique / np.maximum(grams, 1), 0.0)
    for i in np.flatnonzero(ratios > limit):
        ratios[i] = ngram_repeat_ratio(texts[int(i)], n)
    return pl.Series("_ngram_repeat", ratios, pl.Float64)


def max_paragraph_repeats(text: str | None, min_chars: int) -> int:
    """How often the most repeated paragraph (of at least `min_chars`) occurs."""
    return max(_paragraphs(text, min_chars).values(), default=0)


# What the report marks in a dropped row: the span a check fired on -------------------------------


def repeated_ngram(text: str | None, n: int) -> str | None:
    """The word n-gram that repeats most often in `text` (words joined by single spaces), or None."""
    gram, times = max(Counter(_ngrams(text, n)).items(), key=lambda item: item[1], default=((), 0))
    return " ".join(gram) if times > 1 else None


def repeated_paragraph(text: str | None, min_chars: int) -> str | None:
    """The paragraph that `max_paragraph_repeats` counts, or None."""
    paragraph, times = max(_paragraphs(text, min_chars).items(), key=lambda item: item[1], default=("", 0))
    return paragraph if times > 1 else None


def foreign_span(problem: str | None, text: str | None) -> str | None:
    """The first run of prose letters in `text` written in a script the problem does not use (what
    `language_mix` counts), with the spaces, digits and punctuation inside the run; None if none."""
    frame = pl.DataFrame({"problem": [problem or ""], "text": [text or ""]}).with_columns(
        pl.col(c).str.replace_all(_NOT_PROSE, " ") for c in ("problem", "text")
    )
    letters = {script: rf"\p{{{script}}}" if script != "Latin" else r"A-Za-z\p{Latin}" for script in SCRIPTS}

    def count(column: str, pattern: str) -> int:
        return frame[column].str.count_matches(f"[{pattern}]").item()

    foreign = "".join(p for p in letters.values() if count("problem", p) == 0 and count("text", p) > 0)
    if not foreign or count("problem", "".join(letters.values())) == 0:
        return None
    return frame["text"].str.extract(f"([{foreign}]+(?:[\\s\\p{{P}}\\d]*[{foreign}]+)*)").item()


def offending_span(reason: str, problem: str | None, text: str | None, options: dict[str, Any]) -> str | None:
    """The part of an assistant turn that quality dropped it for: the repeated n-gram or paragraph
    (`repetition`, whichever check fired first), the first foreign-script run (`language_mix`);
    None for every other reason. `options` are the stage's (defaults fill what is missing)."""
    opts = {**Quality.defaults, **options}
    if reason == "repetition":
        if ngram_repeat_ratio(text, opts["ngram"]) > opts["max_ngram_repeat"]:
            return repeated_ngram(text, opts["ngram"])
        return repeated_paragraph(text, opts["paragraph_min_chars"])
    if reason == "language_mix":
        return foreign_span(problem, text)
    return None


class Quality(Stage):
    name = "quality"
    version = "1"
    defaults = {
        "think": "auto",  # require | auto | optional
        "think_auto_share": 0.5,  # auto: inputs with at least this share of reasoning rows require it
        "require_final_answer": False,  # also drop answers with no final-answer marker at all
        "ngram": 10,
        "max_ngram_repeat": 0.5,
        "paragraph_min_chars": 40,
        "max_paragraph_repeats": 3,
        "max_foreign_letters": 0.05,  # share of letters in scripts the problem does not use
        "tokenizer": None,  # hub name or local path; None: whitespace word count
        "min_tokens": 0,
        "max_tokens": None,
        "max_new_tokens": None,  # the teacher's generation limit: completions this long were cut
    }
    types = {"tokenizer": str, "max_tokens": int, "max_new_tokens": int}
    choices = {"think": THINK_POLICIES}

    def __init__(self, **options: Any):
        super().__init__(**options)
        name = self.options["tokenizer"]
        self.tokenizer = load_tokenizer(name) if name else None
        self.think_inputs: list[str] = []

    def fingerprint(self) -> dict[str, Any]:
        checksum = tokenizer_checksum(self.tokenizer) if self.tokenizer is not None else None
        return {**super().fingerprint(), "tokenizer_checksum": checksum}

    def prepare(self, ctx: StageContext) -> None:
        ctx.stats["token_counter"] = self.options["tokenizer"] or "whitespace"
        if self.options["think"] != "auto" or not ctx.input_parts():
            return
        shares = (
            ctx.scan()
            .group_by(_input_of().alias("input"))
            .agg(has_reasoning().mean().alias("share"))
            .filter(pl.col("share") >= self.options["think_auto_share"])
            .collect(engine="streaming")  # in memory, the reasoning column of every row would be loaded
        )
        self.think_inputs = sorted(s for s in shares["input"].to_list() if s is not None)
        ctx.stats["think_required_for"] = self.think_inputs

    def _reasoning_required(self) -> pl.Expr:
        policy = self.options["think"]
        if policy == "auto":
            return _input_of().is_in(self.think_inputs)
        return pl.lit(policy == "require")

    def process(self, batch: pl.DataFrame) -> pl.DataFrame:
        opts = self.options
        batch = batch.with_columns(answer_expr().alias("_answer"), assistant_expr().alias("_assistant"))
        assistant = batch["_assistant"].to_list()
        prompt_tokens = count_tokens(batch["problem"].to_list(), self.tokenizer)
        completion_tokens = count_tokens(assistant, self.tokenizer)
        batch = batch.with_columns(
            pl.Series("prompt_tokens", prompt_tokens, pl.Int64),
            pl.Series("completion_tokens", completion_tokens, pl.Int64),
            pl.Series(
                "n_tokens", [p + c for p, c in zip(prompt_tokens, completion_tokens, strict=True)], pl.Int64
            ),
            ngram_repeat_ratios(batch["_assistant"], opts["ngram"], opts["max_ngram_repeat"]),
            pl.Series(
                "_paragraph_repeats",
                [max_paragraph_repeats(t, opts["paragraph_min_chars"]) for t in assistant],
                pl.Int64,
            ),
        )
        batch = batch.with_columns(_foreign_share(batch))
        response, reasoning, answer = pl.col("response"), pl.col("reasoning"), pl.col("_answer")
        blank_response = response.is_null() | (response.str.strip_chars().str.len_chars() == 0)
        final_in_answer = answer.str.contains(FINAL_ANSWER)
        final_in_reasoning = reasoning.str.contains(FINAL_ANSWER).fill_null(False)

        batch = decide(batch, blank_response & reasoning.is_null(), "empty_response", pl.lit("no response"))
        batch = decide(
            batch,
            unclosed_expr(),
            "think_unclosed",
            pl.lit("<think> is never closed: the generation stopped inside the reasoning"),
        )
        batch = decide(
            batch,
            reasoning.is_null() & self._reasoning_required(),
            "think_missing",
            pl.format("no <think> reasoning (required for input {})", _input_of()),
        )
        batch = decide(
            batch,
            ~has_reasoning() & reasoning.is_not_null(),
            "empty_reasoning",
            pl.lit("<think></think> is empty"),
        )
        batch = decide(batch, *self._truncation())
        batch = decide(
            batch,
            final_in_reasoning & ~final_in_answer & has_reasoning(),
            "answer_only_in_reasoning",
            pl.lit("the final answer appears inside <think> but not in the answer after it"),
        )
        no_answer = answer.str.strip_chars().str.len_chars() == 0
        if opts["require_final_answer"]:
            no_answer = no_answer | ~final_in_answer
        batch = decide(batch, no_answer, "no_final_answer", pl.lit("no final answer after the reasoning"))
        batch = decide(
            batch,
            pl.col("_ngram_repeat") > opts["max_ngram_repeat"],
            "repetition",
            pl.format("{}-gram repeat ratio {}", pl.lit(opts["ngram"]), pl.col("_ngram_repeat").round(3)),
        )
        batch = decide(
            batch,
            pl.col("_paragraph_repeats") > opts["max_paragraph_repeats"],
            "repetition",
            pl.format("a paragraph is repeated {} times", pl.col("_paragraph_repeats")),
        )
        batch = decide(
            batch,
            pl.col("_foreign") > opts["max_foreign_letters"],
            "language_mix",
            pl.format(
                "{}% of letters in scripts the problem does not use", (pl.col("_foreign") * 100).round(1)
            ),
        )
        batch = decide(
            batch,
            pl.col("n_tokens") < opts["min_tokens"],
            "too_short",
            pl.format("{} tokens < min_tokens {}", pl.col("n_tokens"), pl.lit(opts["min_tokens"])),
        )
        if opts["max_tokens"] is not None:
            batch = decide(
                batch,
                pl.col("n_tokens") > opts["max_tokens"],
                "too_long",
                pl.format("{} tokens > max_tokens {}", pl.col("n_tokens"), pl.lit(opts["max_tokens"])),
            )
        return batch.drop("_answer", "_assistant", "_ngram_repeat", "_paragraph_repeats", "_foreign")

    def _truncation(self) -> tuple[pl.Expr, str, pl.Expr]:
        """The teacher stopped at its token limit, as its metadata or the completion length say."""
        flagged = pl.lit(False)
        for path, value in _TRUNCATION_FLAGS:
            flagged = flagged | (
                pl.col("meta").str.json_path_match(path).str.to_lowercase() == value
            ).fill_null(False)
        detail = pl.lit("the teacher hit its token limit (metadata)")
        limit = self.options["max_new_tokens"]
        if limit is not None:
            at_limit = pl.col("completion_tokens") >= limit
            detail = (
                pl.when(flagged)
                .then(detail)
                .otherwise(
                    pl.format(
                        "{} completion tokens reach max_new_tokens {}",
                        pl.col("completion_tokens"),
                        pl.lit(limit),
                    )
                )
            )
            flagged = flagged | at_limit
        return flagged, "truncated", detail


# Text whose letters say nothing about the language: code, math, LaTeX commands, the think tags.
_NOT_PROSE = r"(?s)```.*?```|`[^`]*`|\$\$.*?\$\$|\$[^$]*\$|\\\[.*?\\\]|\\\(.*?\\\)|\\[A-Za-z]+|</?think>"


def _foreign_share(batch: pl.DataFrame) -> pl.Series:
    """Share of the assistant turn's prose letters written in scripts that the problem does not use
    at all (0 when the problem has no letters to tell its language by).

    An ASCII assistant turn has Latin letters only, so where the problem's prose has a Latin letter
    too the share is 0 without counting anything in the long text: only the other rows (non-ASCII
    turns, problems in another script) are counted, script by script.
    """
    problem_latin = batch["problem"].str.replace_all(_NOT_PROSE, " ").str.contains("[A-Za-z]")
    counted = ~(~batch["_assistant"].str.contains(r"[^\x00-\x7F]") & problem_latin).fill_null(False)
    shares = pl.Series("_foreign", [0.0] * batch.height, pl.Float64)
    if not counted.any():
        return shares
    return shares.scatter(counted.arg_true(), _counted_foreign_share(batch.filter(counted)))


def _counted_foreign_share(batch: pl.DataFrame) -> pl.Series:
    """`_foreign_share` by counting every script's letters. Scripts other than Latin are counted on
    the non-ASCII characters only, which are few: one pass over the long text instead of one per
    script."""
    prose = batch.select(
        *(pl.col(c).str.replace_all(_NOT_PROSE, " ").alias(c) for c in ("problem", "_assistant"))
    ).with_columns(
        *(
            pl.col(c).str.replace_all(r"[\x00-\x7F]+", "").alias(f"{c}_wide")
            for c in ("problem", "_assistant")
        )
    )

    def letters(script: str, column: str) -> pl.Expr:
        count = pl.col(f"{column}_wide").str.count_matches(rf"\p{{{script}}}")
        if script == "Latin":
            count = count + pl.col(column).str.count_matches("[A-Za-z]")
        return count.fill_null(0)

    total, foreign, problem_letters = pl.lit(0), pl.lit(0), pl.lit(0)
    for script in SCRIPTS:
        in_text, in_problem = letters(script, "_assistant"), letters(script, "problem")
        total = total + in_text
        problem_letters = problem_letters + in_problem
        foreign = foreign + pl.when(in_problem == 0).then(in_text).otherwise(0)
    share = pl.when((total > 0) & (problem_letters > 0)).then(foreign / total).otherwise(0.0)
    return prose.select(share.cast(pl.Float64).alias("_foreign")).to_series()
