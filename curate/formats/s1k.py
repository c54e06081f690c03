"""simplescaling s1K and s1K-1.1: `question`, `solution` (the reference), `cot_type`,
`source_type`, `metadata`, and per teacher a thinking trajectory and an attempt.

s1K has `thinking_trajectories` (a list, Gemini's) and `attempt`; s1K-1.1 has
`gemini_thinking_trajectory`/`gemini_attempt` and `deepseek_thinking_trajectory`/`deepseek_attempt`
with each teacher's grade. One row per teacher: the trajectory is the reasoning, the attempt the
response, and that teacher's own fields go to its row's `meta`.
"""

from __future__ import annotations

from typing import Any

from curate.formats.base import Adapter, Fields, as_text

# prefix of the per-teacher fields in s1K-1.1 -> the model the dataset card names
TEACHERS = {"deepseek": "DeepSeek-R1", "gemini": "gemini-2.0-flash-thinking-exp"}
S1K_TEACHER = "gemini-2.0-flash-thinking-exp"


def _joined(value: Any, field: str) -> str | None:
    if isinstance(value, list):
        parts = [as_text(part, f"{field}[{i}]") for i, part in enumerate(value)]
        return "\n\n".join(p for p in parts if p) or None
    return as_text(value, field)


class S1K(Adapter):
    name = "s1k"
    description = (
        "question, solution, thinking_trajectories/attempt or {deepseek,gemini}_*: one row per teacher"
    )
    fields = ("question", "solution", "thinking_trajectories", "attempt", "deepseek_thinking_trajectory")

    def detect(self, record: dict[str, Any]) -> bool:
        return "question" in record and any(
            key in record
            for key in ("thinking_trajectories", *(f"{t}_thinking_trajectory" for t in TEACHERS))
        )

    def convert(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        fields = Fields(record)
        problem = fields.text("question", required=True)
        reference = fields.any_text("solution", scalar=True)
        subset = fields.peek("source_type")
        runs = []  # (teacher, reasoning, response, that teacher's own fields)
        if "thinking_trajectories" in record:
            reasoning = _joined(fields.get("thinking_trajectories"), "thinking_trajectories")
            runs.append((S1K_TEACHER, reasoning, fields.any_text("attempt"), {}))
        for prefix, model in TEACHERS.items():
            if f"{prefix}_thinking_trajectory" not in record:
                continue
            own = {k: fields.get(k) for k in list(record) if k.startswith(f"{prefix}_")}
            reasoning = _joined(own.pop(f"{prefix}_thinking_trajectory"), f"{prefix}_thinking_trajectory")
            response = as_text(own.pop(f"{prefix}_attempt", None), f"{prefix}_attempt")
            if reasoning or response:
                runs.append((model, reasoning, response, own))
        shared = fields.unused()
        return [
            dict(
                problem=problem,
                reasoning=reasoning,
                response=response,
                reference=reference,
                teacher=teacher,
                subset=subset,
                meta={**shared, **own},
            )
            for teacher, reasoning, response, own in runs
        ] or [dict(problem=problem, reference=reference, subset=subset, meta=shared)]
