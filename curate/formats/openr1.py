"""OpenR1-Math: a problem with several `generations`, one trace row per generation.

Only the lists that are per-generation by name (correctness_math_verify, correctness_llama,
finish_reasons, is_reasoning_complete, ...) are split: row i keeps element i of each in `meta`.
A list that merely has as many items as there are generations, such as the 2-turn `messages` of a
2-generation row, stays whole.
"""

from __future__ import annotations

import re
from typing import Any

from curate.formats.base import Adapter, Fields

PER_GENERATION = re.compile(r"^(correctness_.*|finish_reasons?|is_reasoning_complete|.*_per_generation)$")


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
        # The dataset card names the teacher: every generation is DeepSeek-R1's.
        teacher = fields.any_text("model", "generator", "teacher") or "DeepSeek-R1"
        generations = fields.text_list("generations")
        rest = fields.unused()
        per_generation = {
            key: value
            for key, value in rest.items()
            if PER_GENERATION.match(key) and isinstance(value, list) and len(value) == len(generations)
        }
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
