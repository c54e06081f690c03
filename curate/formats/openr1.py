"""OpenR1-Math: a problem with several `generations`, one trace row per generation.

Only the lists that are per-generation by name (correctness_math_verify, correctness_llama,
finish_reasons, is_reasoning_complete, api_metadata, ...) are split: row i keeps element i of each
in `meta`. A list that merely has as many items as there are generations, such as the 2-turn
`messages` of a 2-generation row, stays whole.

OpenR1-Math-Raw ships its verdicts as one object of per-generation lists, `correctness:
{llama_verification: [...], math_verify_answer: [...], math_verify_reparsed_answer: [...]}`: row i
gets `correctness: {llama_verification: v[i], ...}` in meta (select's `pass_field:
correctness.math_verify_reparsed_answer` reads it). Its `answer` is the reference; where that is
empty, the first of `reparsed_answers` (the answers re-extracted from the solution) is.
"""

from __future__ import annotations

import re
from typing import Any

from curate.formats.base import Adapter, Fields, as_text

PER_GENERATION = re.compile(
    r"^(correctness_.*|finish_reasons?|is_reasoning_complete|api_metadata|.*_per_generation)$"
)
VERDICTS = ("correctness", "correct")  # an object of per-generation verdict lists (OpenR1-Math-Raw)


def _per_generation_verdicts(value: Any, count: int) -> list[dict[str, Any]] | None:
    """`{judge: [verdict per generation]}` as one `{judge: verdict}` per generation; None for any
    other value (an object whose lists do not have one item per generation stays whole)."""
    if not isinstance(value, dict) or not value:
        return None
    if not all(isinstance(v, list) and len(v) == count for v in value.values()):
        return None
    return [{judge: verdicts[i] for judge, verdicts in value.items()} for i in range(count)]


class OpenR1(Adapter):
    name = "openr1"
    description = "problem, answer, generations[] (+ per-generation lists): one row per generation"
    fields = ("problem", "answer", "generations", "correctness_math_verify", "is_reasoning_complete")

    def detect(self, record: dict[str, Any]) -> bool:
        return isinstance(record.get("generations"), list) and "problem" in record

    def convert(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        fields = Fields(record)
        problem = fields.text("problem", required=True)
        reference = fields.any_text("answer", "reference", scalar=True)
        reparsed = record.get("reparsed_answers")
        if not (reference or "").strip() and isinstance(reparsed, list) and reparsed:
            reference = as_text(reparsed[0], "reparsed_answers[0]", scalar=True)
        # The dataset card names the teacher: every generation is DeepSeek-R1's.
        teacher = fields.any_text("model", "generator", "teacher") or "DeepSeek-R1"
        generations = fields.text_list("generations")
        rest = fields.unused()
        per_generation = {
            key: value
            for key, value in rest.items()
            if PER_GENERATION.match(key) and isinstance(value, list) and len(value) == len(generations)
        }
        for key in VERDICTS:
            verdicts = _per_generation_verdicts(rest.get(key), len(generations))
            if verdicts is not None:
                per_generation[key] = verdicts
        shared = {key: value for key, value in rest.items() if key not in per_generation}
        common = dict(problem=problem, reference=reference, teacher=teacher, subset=fields.peek("source"))
        if not generations:
            return [dict(common, meta=shared)]
        return [
            dict(
                common,
                response=generation,
                meta={**shared, **{key: value[i] for key, value in per_generation.items()}, "generation": i},
            )
            for i, generation in enumerate(generations)
        ]
