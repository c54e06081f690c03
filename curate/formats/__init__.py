"""Input-format adapters, detected from the shape of a file's first records (`--format` overrides).

Order matters: the most specific shapes come first, the catch-alls (problem sets, prompt/response)
last. `ADAPTERS` is the registry; adding a format means adding one module and one line here.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from curate.formats.am_distill import AMDistill
from curate.formats.base import Adapter, Malformed
from curate.formats.chat import Chat
from curate.formats.code_sets import APPS, MBPP, HumanEval, LeetCode, StdinTests
from curate.formats.eval_dump import EvalDump
from curate.formats.openr1 import OpenR1
from curate.formats.openthoughts import OpenThoughts
from curate.formats.problem_set import ProblemSet
from curate.formats.prompt_response import PromptResponse

ADAPTERS: dict[str, Adapter] = {
    adapter.name: adapter
    for adapter in (
        OpenR1(),
        AMDistill(),
        OpenThoughts(),
        Chat(),
        EvalDump(),
        HumanEval(),
        LeetCode(),
        APPS(),
        MBPP(),
        StdinTests(),
        ProblemSet(),
        PromptResponse(),
    )
}

__all__ = ["ADAPTERS", "Adapter", "Malformed", "detect_format"]


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
