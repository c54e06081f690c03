"""nvidia OpenCodeReasoning: `input` (the problem), `output` (DeepSeek-R1's answer with its
`<think>` reasoning), `solution` (the code extracted from it), `dataset`, `split`, `id`, `source`,
`license`, `difficulty`.

Rows of its split_1 hold `input: "-"`: the problem text lives in the dataset they came from
(TACO, APPS, CodeContests, Codeforces) and must be filled in first; they are rejected as
malformed with that reason rather than ingested with "-" as the problem.
"""

from __future__ import annotations

from typing import Any

from curate.formats.base import Adapter, Fields, Malformed

CARD_TEACHER = "DeepSeek-R1"


class OpenCodeReasoning(Adapter):
    name = "opencodereasoning"
    description = "input, output (<think> + code), solution, dataset, split, id"
    fields = ("id", "input", "output", "solution", "dataset", "split", "difficulty")

    def detect(self, record: dict[str, Any]) -> bool:
        return {"input", "output", "solution"} <= record.keys() and bool(
            {"dataset", "split", "difficulty"} & record.keys()
        )

    def convert(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        fields = Fields(record)
        problem = fields.text("input", required=True)
        if problem.strip() == "-":
            raise Malformed(
                "input",
                f"is '-': the problem text is in the {record.get('dataset')!r} dataset "
                f"(split {record.get('split')!r}, index {record.get('index')!r}); fill it in first",
            )
        return [
            dict(
                problem=problem,
                response=fields.text("output"),
                teacher=fields.any_text("model", "generator") or CARD_TEACHER,
                subset=fields.peek("dataset", "source"),
                meta=fields.unused(),
            )
        ]
