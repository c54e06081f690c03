"""The verl RL parquet layout (Skywork-OR1, DeepScaleR/DAPO exports, Eurus-2-RL, DeepCoder):
`prompt` is a chat list, the gold answer is `reward_model.ground_truth`, extras in `extra_info`.

A math row's ground truth is the reference; a code row's (ability `code`, or a ground truth that is
a test layout) becomes a test spec. `data_source` is the row's subset. The rows are prompts for
generation: they carry no response.
"""

from __future__ import annotations

import json
from typing import Any

from curate.formats.base import Adapter, Fields, as_text
from curate.formats.chat import chat_turns, split_transcript
from curate.formats.code_tests import json_value, spec_from_published, spec_text
from curate.verify.code.specs import SpecError


def _looks_like_tests(value: Any) -> bool:
    try:
        parsed = json_value(value, "reward_model.ground_truth")
    except SpecError:
        return False
    return isinstance(parsed, list | dict)


def _answer(truth: Any, meta: dict[str, Any]) -> str | None:
    """A math ground truth; some exports give a list of accepted answers (`["6"]`, or its JSON
    text): the first is the reference and the rest stay in `meta`. JSON text of numbers (`[1, 2]`)
    is an answer itself, an interval or a tuple."""
    answers = truth
    if isinstance(truth, str) and truth.lstrip().startswith("["):
        try:
            parsed = json.loads(truth)
        except ValueError:
            parsed = None
        answers = parsed if isinstance(parsed, list) and all(isinstance(a, str) for a in parsed) else truth
    if isinstance(answers, list) and answers and all(isinstance(a, str | int | float) for a in answers):
        if len(answers) > 1:
            meta["reference_alternatives"] = answers[1:]
        return as_text(answers[0], "reward_model.ground_truth", scalar=True)
    return as_text(truth, "reward_model.ground_truth", scalar=True)


class VerlRL(Adapter):
    name = "verl"
    description = "verl RL rows: prompt (chat list), reward_model{ground_truth}, data_source, extra_info"
    fields = ("data_source", "prompt", "ability", "reward_model", "extra_info")

    def detect(self, record: dict[str, Any]) -> bool:
        prompt = record.get("prompt")
        return (
            isinstance(record.get("reward_model"), dict)
            and isinstance(prompt, list)
            and bool(prompt)
            and isinstance(prompt[0], dict)
            and "content" in prompt[0]
        )

    def convert(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        fields = Fields(record)
        user, assistant, others = split_transcript(chat_turns(fields, "prompt"), "prompt")
        reward = fields.get("reward_model") or {}
        truth = reward.get("ground_truth")
        ability = str(record.get("ability") or "").lower()
        row: dict[str, Any] = dict(
            problem=user["content"],
            response=assistant["content"] if assistant else None,
            subset=fields.peek("data_source"),
        )
        meta = fields.unused()
        meta["reward_model"] = {k: v for k, v in reward.items() if k != "ground_truth"}
        if ability == "code" or (ability != "math" and _looks_like_tests(truth)):
            try:
                row["tests"] = spec_text(spec_from_published(truth))
            except SpecError as error:
                if ability == "code":
                    meta["tests_unconverted"] = str(error)
                else:  # a math answer that happens to parse as JSON, such as [1, 2]
                    row["reference"] = as_text(truth, "reward_model.ground_truth", scalar=True)
        else:
            row["reference"] = _answer(truth, meta)
        if others:
            meta["other_turns"] = [{"role": t["role"], "content": t["content"]} for t in others]
        row["meta"] = meta
        return [row]
