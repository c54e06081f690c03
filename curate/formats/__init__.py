"""Input-format adapters, detected from the shape of a file's first records (`--format` overrides).

Order matters: the most specific shapes come first (a dataset's own fields beat the chat
transcript many of them also carry), the catch-alls (problem sets, prompt/response) last.
`ADAPTERS` is the registry; adding a format means adding one module and one line here.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from curate.formats.am_distill import AMDistill
from curate.formats.base import Adapter, Malformed, remap
from curate.formats.chat import Chat
from curate.formats.code_sets import APPS, MBPP, HumanEval, LeetCode, StdinTests
from curate.formats.codeforces_cots import CodeforcesCots
from curate.formats.deepcoder import DeepCoder
from curate.formats.eval_dump import EvalDump
from curate.formats.kodcode import KodCode
from curate.formats.livecodebench import LiveCodeBench
from curate.formats.opencodereasoning import OpenCodeReasoning
from curate.formats.openmath import OpenMathReasoning
from curate.formats.openr1 import OpenR1
from curate.formats.openthoughts import OpenThoughts
from curate.formats.openthoughts_metadata import OpenThoughtsMetadata
from curate.formats.primeintellect import PrimeIntellect
from curate.formats.problem_set import ProblemSet
from curate.formats.prompt_response import PromptResponse
from curate.formats.s1k import S1K
from curate.formats.verl import VerlRL

ADAPTERS: dict[str, Adapter] = {
    adapter.name: adapter
    for adapter in (
        OpenR1(),
        AMDistill(),
        KodCode(),
        CodeforcesCots(),
        PrimeIntellect(),
        VerlRL(),
        LiveCodeBench(),
        OpenCodeReasoning(),
        OpenMathReasoning(),
        S1K(),
        OpenThoughtsMetadata(),
        OpenThoughts(),
        Chat(),
        EvalDump(),
        HumanEval(),
        LeetCode(),
        APPS(),
        MBPP(),
        DeepCoder(),
        StdinTests(),
        ProblemSet(),
        PromptResponse(),
    )
}

__all__ = ["ADAPTERS", "Adapter", "Malformed", "closest_formats", "convert", "detect_format", "remap"]


def detect_format(records: list[dict[str, Any]]) -> str | None:
    """The adapter most of these sample records match (first in registry order on ties), or None."""
    votes: Counter[str] = Counter()
    for record in records:
        for name, adapter in ADAPTERS.items():
            if adapter.detect(record):
                votes[name] += 1
                break
    if not votes:
        return None
    order = list(ADAPTERS)
    return max(votes, key=lambda name: (votes[name], -order.index(name)))


def convert(record: dict[str, Any], fmt: str, mapping: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The partial trace rows (problem, response, reference, tests, teacher, subset, meta dict) of
    one record read by adapter `fmt`, its columns renamed by `mapping` first. Raises Malformed for
    a record that cannot be read, that holds no trace, or that gives a row without a problem."""
    rows = ADAPTERS[fmt].convert(remap(record, mapping or {}))
    if not rows:
        raise Malformed(None, "the record holds no trace")
    if any(not isinstance(row.get("problem"), str) for row in rows):
        raise Malformed("problem", "missing")
    return rows


def closest_formats(seen: set[str], limit: int = 3) -> list[str]:
    """The formats whose marking fields share most with the fields seen (registry order on ties)."""
    lowered = {name.lower() for name in seen}
    scores = {name: len(lowered & set(adapter.fields)) for name, adapter in ADAPTERS.items()}
    ranked = sorted((name for name in scores if scores[name]), key=lambda name: -scores[name])
    return ranked[:limit]
