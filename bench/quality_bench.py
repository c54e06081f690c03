"""Quality benchmark: distillery's repetition checks (and its whole quality stage) against datatrove's
GopherRepetitionFilter, side by side on the same texts: rows/s, and which rows each flags.

Texts: the real math traces of ../shared/data (Qwen2.5-Math samples, MATH-500 and AIME solutions),
repeated to `--rows`, of which `--loops` (a share) are turned into degenerate generations the way
teachers fail: a sentence or a paragraph repeated until the token budget runs out.

    .venv-bench/bin/python bench/quality_bench.py --rows 20000
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curate.schema import TRACE_SCHEMA  # noqa: E402
from curate.stages.quality import Quality, max_paragraph_repeats, ngram_repeat_ratio  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def real_traces() -> list[tuple[str, str]]:
    """(problem, response) of every real math trace in the shared data."""
    pairs = []
    for line in (DATA / "math" / "qwen_math_cot_100.jsonl").read_text().splitlines():
        record = json.loads(line)
        pairs += [(record["question"], sample) for sample in record["code"]]
    for name in ("math/math500.jsonl", "problems/aime_train.jsonl"):
        for line in (DATA / name).read_text().splitlines():
            record = json.loads(line)
            if record.get("solution"):
                pairs.append((record["problem"], record["solution"]))
    return pairs


def degenerate(text: str, rng: random.Random) -> str:
    """A trace that falls into a loop: one of its sentences or paragraphs, repeated 15-60 times."""
    paragraphs = [p for p in text.split("\n\n") if len(p) > 40] or [text]
    if rng.random() < 0.5:
        sentences = [s for s in text.replace("\n", " ").split(". ") if len(s.split()) >= 6] or [text[:200]]
        loop = " ".join([rng.choice(sentences) + "."] * rng.randint(15, 60))
    else:
        loop = "\n\n".join([rng.choice(paragraphs)] * rng.randint(15, 60))
    return text[: len(text) // 2] + " " + loop


def corpus(rows: int, loop_share: float, seed: int = 0) -> tuple[list[tuple[str, str]], list[bool]]:
    rng = random.Random(seed)
    real = real_traces()
    texts, looped = [], []
    for i in range(rows):
        problem, response = real[i % len(real)]
        is_loop = rng.random() < loop_share
        texts.append((problem, degenerate(response, rng) if is_loop else response))
        looped.append(is_loop)
    return texts, looped


def run_distillery_repetition(texts: list[tuple[str, str]]) -> tuple[float, list[bool]]:
    defaults = Quality.defaults
    started = time.perf_counter()
    flags = [
        ngram_repeat_ratio(r, defaults["ngram"]) > defaults["max_ngram_repeat"]
        or max_paragraph_repeats(r, defaults["paragraph_min_chars"]) > defaults["max_paragraph_repeats"]
        for _, r in texts
    ]
    return time.perf_counter() - started, flags


def run_distillery_stage(texts: list[tuple[str, str]]) -> tuple[float, list[bool], dict[str, int]]:
    """The whole quality stage (every filter), batch by batch as the pipeline runs it."""
    stage = Quality(think="optional")
    columns = {c: [None] * len(texts) for c in TRACE_SCHEMA.names}
    columns.update(
        row_id=list(range(len(texts))),
        problem=[p for p, _ in texts],
        response=[r for _, r in texts],
        source=["bench"] * len(texts),
        meta=["{}"] * len(texts),
    )
    frame = pl.DataFrame(columns, schema=pl.Schema(TRACE_SCHEMA))
    started = time.perf_counter()
    reasons = []
    for start in range(0, frame.height, 1024):
        reasons += stage.process(frame.slice(start, 1024))["_reason"].to_list()
    seconds = time.perf_counter() - started
    counts: dict[str, int] = {}
    for reason in reasons:
        counts[reason or "kept"] = counts.get(reason or "kept", 0) + 1
    return seconds, [r == "repetition" for r in reasons], counts


def run_datatrove(texts: list[tuple[str, str]]) -> tuple[float, list[bool]]:
    from datatrove.data import Document
    from datatrove.pipeline.filters import GopherRepetitionFilter
    from datatrove.utils.word_tokenizers import WhitespaceTokenizer

    class SplitWords(WhitespaceTokenizer):
        """datatrove's word splitting needs spaCy (not installed); split on whitespace, as distillery does."""

        def word_tokenize(self, text: str) -> list[str]:
            return text.split()

    gopher = GopherRepetitionFilter(language=SplitWords())
    started = time.perf_counter()
    flags = []
    for i, (_, response) in enumerate(texts):
        verdict = gopher.filter(Document(text=response, id=str(i)))
        flags.append(verdict is not True and not (isinstance(verdict, tuple) and verdict[0]))
    return time.perf_counter() - started, flags


def report(name: str, flags: list[bool], looped: list[bool]) -> str:
    caught = sum(f and loop for f, loop in zip(flags, looped, strict=True))
    false = sum(f and not loop for f, loop in zip(flags, looped, strict=True))
    loops, clean = sum(looped), len(looped) - sum(looped)
    return f"{name:<34} loops caught {caught}/{loops} ({100 * caught / max(loops, 1):.1f}%)   real traces flagged {false}/{clean} ({100 * false / max(clean, 1):.1f}%)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--loops", type=float, default=0.1, help="share of degenerate rows")
    args = parser.parse_args()
    if not DATA.exists():
        print(f"shared data not found at {DATA}")
        return 1
    texts, looped = corpus(args.rows, args.loops)
    words = sum(len(r.split()) for _, r in texts)
    print(f"{len(texts):,} traces, {words:,} words, {sum(looped):,} degenerate")

    ours_s, ours = run_distillery_repetition(texts)
    theirs_s, theirs = run_datatrove(texts)
    stage_s, stage_flags, reasons = run_distillery_stage(texts)
    print(f"\n{'':<34} {'seconds':>8} {'rows/s':>10}")
    print(f"{'distillery repetition checks':<34} {ours_s:>8.2f} {len(texts) / ours_s:>10,.0f}")
    print(f"{'datatrove GopherRepetitionFilter':<34} {theirs_s:>8.2f} {len(texts) / theirs_s:>10,.0f}")
    print(f"{'distillery quality stage (all)':<34} {stage_s:>8.2f} {len(texts) / stage_s:>10,.0f}")
    print(f"speed ratio (repetition, distillery / datatrove): {theirs_s / ours_s:.2f}x")
    print()
    print(report("distillery repetition checks", ours, looped))
    print(report("distillery quality stage", stage_flags, looped))
    print(report("datatrove GopherRepetitionFilter", theirs, looped))
    print(f"\nquality stage reasons: {dict(sorted(reasons.items()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
