"""A problem with its teacher trace, and the R1 trace format every generator writes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from distill.generate.prompts import PromptItem


@dataclass
class Task:
    """One problem and its teacher trace, with what a defect needs to rewrite it."""

    domain: str
    family: str
    problem: str
    reference: str | None
    tests: dict[str, Any] | None
    think: str
    final: str
    wrong_think: str
    wrong_final: str
    name: str | None = None  # code: the function's name

    @property
    def tests_json(self) -> str | None:
        return json.dumps(self.tests) if self.tests is not None else None

    def item(self) -> PromptItem:
        return PromptItem(self.problem, self.reference, self.tests_json, self.domain)


def trace(think: str, final: str) -> str:
    return f"<think>\n{think}\n</think>\n\n{final}"


def boxed_final(answer: str) -> str:
    return f"The answer is $\\boxed{{{answer}}}$."
