"""Evaluation dumps: one question, a gold answer and several sampled responses (Qwen2.5-Math's
eval output: question, gt, code[]/response[], pred[], score[] …): one row per sample.

Per-sample lists of the same length (pred, score, report, pred_score, …) are split into `meta`.
"""

from __future__ import annotations

from typing import Any

from curate.formats.base import Adapter, Fields

QUESTION_KEYS = ("question", "problem", "prompt")
GOLD_KEYS = ("gt", "gt_answer", "gold", "answer")
SAMPLE_KEYS = ("response", "responses", "code", "outputs", "samples", "completions")


def _sample_key(record: dict[str, Any]) -> str | None:
    return next(
        (
            key
            for key in SAMPLE_KEYS
            if isinstance(record.get(key), list)
            and record[key]
            and all(isinstance(s, str) for s in record[key])
        ),
        None,
    )


class EvalDump(Adapter):
    name = "eval_dump"
    description = "question + gt + response[]/code[] samples: one row per sample"
    fields = ("question", "gt", "code", "pred", "score")

    def detect(self, record: dict[str, Any]) -> bool:
        return (
            any(k in record for k in QUESTION_KEYS)
            and any(k in record for k in ("gt", "gt_answer", "gold"))
            and _sample_key(record) is not None
        )

    def convert(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        fields = Fields(record)
        problem = fields.any_text(*QUESTION_KEYS, required=True)
        reference = fields.any_text(*GOLD_KEYS, scalar=True)
        key = _sample_key(record) or "response"
        samples = fields.text_list(key)
        unused = fields.unused()
        per_sample = {k: v for k, v in unused.items() if isinstance(v, list) and len(v) == len(samples)}
        shared = {k: v for k, v in unused.items() if k not in per_sample}
        return [
            dict(
                problem=problem,
                response=sample,
                reference=reference,
                teacher=shared.get("model") if isinstance(shared.get("model"), str) else None,
                meta={**shared, **{k: v[i] for k, v in per_sample.items()}, "sample": i},
            )
            for i, sample in enumerate(samples)
        ]
