"""OpenR1-Math: a problem with several `generations`, one trace row per generation.

Per-generation lists of the same length (correctness_math_verify, finish_reasons,
is_reasoning_complete, ...) are split too: row i keeps element i of each in `meta`.
"""

from __future__ import annotations

from typing import Any

from curate.formats.base import Adapter, Fields


class OpenR1(Adapter):
    name = "openr1"
    description = "problem, answer, generations[] (+ per-generation lists): one row per generation"

    def detect(self, record: dict[str, Any]) -> bool:
        return isinstance(record.get("generations"), list) and "problem" in record

    def convert(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        fields = Fields(record)
        problem = fields.text("problem", required=True)
        reference = fields.any_text("answer", "reference", scalar=True)
        source = fields.any_text("source")
        teacher = fields.any_text("model", "generator", "teacher")
        generations = fields.text_list("generations")
        per_generation = {
            key: value
            for key, value in fields.unused().items()
            if isinstance(value, list) and len(value) == len(generations) and generations
        }
        shared = {key: value for key, value in fields.unused().items() if key not in per_generation}
        if not generations:
            return [dict(problem=problem, reference=reference, source=source, teacher=teacher, meta=shared)]
        return [
            dict(
                problem=problem,
                response=generation,
                reference=reference,
                source=source,
                teacher=teacher,
                meta={**shared, **{key: value[i] for key, value in per_generation.items()}, "generation": i},
            )
            for i, generation in enumerate(generations)
        ]
