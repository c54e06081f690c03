"""Problems to send to a teacher or a student: reading them from any file `distillery curate`
reads, and turning each into an R1-style prompt for its domain.

R1-style means what DeepSeek-R1's usage notes ask for: no system prompt, every instruction in the
user turn, and for math the step-by-step instruction with a `\\boxed{}` answer. The same function
renders the prompt for generation, for the demo corpus and for evaluation, so a student is always
evaluated on prompts shaped like the ones it was trained on.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from curate.schema import DOMAINS
from curate.verify.code.languages import canonical
from distill.generate.base import GenerationError

STYLES = ("r1", "raw")

MATH_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
CHOICE_INSTRUCTION = "Please reason step by step, and put the letter of the correct option within \\boxed{}."
CODE_INSTRUCTIONS = {
    "stdin": "Write a Python program that reads standard input and prints the answer. "
    "Give the final program in one ```python code block.",
    "call": "Write the Python function `{name}`. Give the final code in one ```python code block.",
    "assert": "Complete the Python function `{name}`. Give the whole function in one ```python code block.",
}
# stdin problems whose spec names another language (curate/verify/code/languages.py) ask for it.
CODE_LANGUAGE_NAMES = {
    "cpp": ("C++", "cpp"),
    "java": ("Java", "java"),
    "javascript": ("JavaScript", "javascript"),
}
LANGUAGE_INSTRUCTION = (
    "Write a {language} program that reads standard input and prints the answer. "
    "Give the final program in one ```{fence} code block."
)
_CHOICE_REFERENCE = re.compile(r"^\(?[A-J]\)?$")
_OPTION_LINE = re.compile(r"(?m)^\s*\(?[A-J][).:]\s")


@dataclass
class PromptItem:
    """One problem: its text, what verifies an answer to it, and where it came from."""

    problem: str
    reference: str | None = None
    tests: str | None = None  # JSON test spec (DESIGN section 4)
    domain: str = "math"
    source: str | None = None
    origin: str | None = None  # file:line
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def is_choice(self) -> bool:
        """A multiple-choice item: a single option letter as reference and options in the text."""
        return bool(
            self.reference
            and _CHOICE_REFERENCE.match(self.reference.strip())
            and _OPTION_LINE.search(self.problem)
        )

    def prompt(self, style: str = "r1") -> str:
        """The user message: the problem, plus in the r1 style the answer-format instruction."""
        if style == "raw":
            return self.problem
        if style != "r1":
            raise GenerationError(f"unknown prompt style {style!r}; choose one of {', '.join(STYLES)}")
        if self.tests:
            spec = json.loads(self.tests)
            name = spec.get("fn_name") or spec.get("entry_point") or ""
            instruction = CODE_INSTRUCTIONS.get(spec.get("kind"), CODE_INSTRUCTIONS["stdin"]).format(
                name=name
            )
            language = canonical(spec.get("language")) if isinstance(spec.get("language"), str) else None
            if spec.get("kind", "stdin") == "stdin" and language in CODE_LANGUAGE_NAMES:
                title, fence = CODE_LANGUAGE_NAMES[language]
                instruction = LANGUAGE_INSTRUCTION.format(language=title, fence=fence)
        elif self.is_choice:
            instruction = CHOICE_INSTRUCTION
        elif "\\boxed" in self.problem:  # the problem already says how to answer (AIME 2025's file does)
            return self.problem
        else:
            instruction = MATH_INSTRUCTION
        return f"{self.problem.rstrip()}\n\n{instruction}"

    def messages(self, style: str = "r1") -> tuple[tuple[str, str], ...]:
        return (("user", self.prompt(style)),)


def infer_domain(declared: Any, tests: str | None) -> str:
    """The record's own `domain` when it is one we know, else code when it has tests, else math."""
    if isinstance(declared, str) and declared.lower() in DOMAINS:
        return declared.lower()
    return "code" if tests else "math"


def read_prompts(path: str, source: str | None = None, domain: str | None = None) -> list[PromptItem]:
    """Every distinct problem of a file (any format `distillery curate` reads), in file order.

    Rows that repeat a problem (several generations of one problem) give one prompt. A record
    that cannot be read stops with an error naming the file and line.
    """
    from curate.errors import InputError
    from curate.formats import Malformed, convert, detect_format
    from curate.readers import iter_chunks, parse_line, resolve_inputs, sample_records

    items: list[PromptItem] = []
    seen: set[str] = set()
    for inp in resolve_inputs([path]):
        fmt = detect_format(sample_records(inp))
        if fmt is None:
            raise InputError(
                inp.path, "no known format (expected problem/question/prompt fields, chat messages, ...)"
            )
        for chunk in iter_chunks(inp):
            records = [(f"{inp.path}:{line}", *parse_line(raw)) for line, raw in chunk.lines]
            records += [(f"{inp.path}#{index}", record, None, None) for index, record in chunk.records]
            for origin, record, error, _ in records:
                if error:
                    raise InputError(origin, error)
                if not isinstance(record, dict):
                    raise InputError(origin, f"expected an object, got {type(record).__name__}")
                try:
                    rows = convert(record, fmt)
                except Exception as error:  # Malformed, or an adapter tripping on an odd record
                    message = (
                        str(error) if isinstance(error, Malformed) else f"{type(error).__name__}: {error}"
                    )
                    raise InputError(origin, message) from None
                for row in rows:
                    if row["problem"] in seen:
                        continue
                    seen.add(row["problem"])
                    # JSON-plain, as the trace rows' meta is (a Parquet date or bytes becomes text)
                    meta = json.loads(json.dumps(row.get("meta") or {}, default=str))
                    tests = row.get("tests")
                    items.append(
                        PromptItem(
                            problem=row["problem"],
                            reference=row.get("reference"),
                            tests=tests,
                            domain=domain or infer_domain(meta.pop("domain", None), tests),
                            source=source or inp.stem,
                            origin=origin,
                            meta=meta,
                        )
                    )
    if not items:
        raise InputError(path, "no problem found")
    return items
