"""A consistency judge behind an OpenAI-compatible chat endpoint, over the standard library only.

`curate` must not import `distill` (where the generation backends live), so the LongRePS stage takes
either a judge callable (for instance one built on a distill.generate backend, with `judge_prompt`
and `parse_score` from here) or the URL of any server that speaks the OpenAI chat-completions
protocol (vLLM, SGLang, llama.cpp, a hosted API).
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request

from curate.errors import CurateError

PROMPT = """You check the internal consistency of a reasoning path written to answer a question about a long document.

Question (the end of the prompt, after the document):
{question}

Reasoning path:
{reasoning}

Final answer given: {answer}

Is the reasoning consistent? Every step should follow from the steps and quoted evidence before it, \
nothing should contradict anything else, and the final answer should be what the reasoning concludes. \
Whether the answer is true does not matter here. Rate the consistency from 0 (incoherent) to 10 \
(fully consistent). Reply with the number only."""

_NUMBER = re.compile(r"\d+(?:\.\d+)?")


class JudgeError(CurateError):
    """The judge could not be reached or gave no usable score."""


def parse_score(text: str) -> float:
    """The first number of the reply, on the 0-10 scale, as a score in [0, 1]."""
    match = _NUMBER.search(text)
    if not match:
        raise JudgeError(f"judge reply has no score: {text[:80]!r}")
    return min(max(float(match.group(0)) / 10.0, 0.0), 1.0)


def judge_prompt(
    problem: str, reasoning: str, answer: str, question_chars: int = 4000, reasoning_chars: int = 24000
) -> str:
    """The rating request for one path. The question sits at the end of a long-context prompt; the
    document itself is not needed to judge consistency (and would not fit most judges' context)."""
    return PROMPT.format(
        question=problem[-question_chars:], reasoning=reasoning[:reasoning_chars], answer=answer
    )


class OpenAIJudge:
    """judge(problem, reasoning, answer) -> score in [0, 1], by POST {url}/chat/completions."""

    def __init__(
        self,
        url: str,
        model: str,
        api_key_env: str | None = "OPENAI_API_KEY",
        timeout_s: float = 60.0,
        question_chars: int = 4000,
        reasoning_chars: int = 24000,
    ):
        self.endpoint = url.rstrip("/") + "/chat/completions"
        self.model, self.timeout_s = model, timeout_s
        self.question_chars, self.reasoning_chars = question_chars, reasoning_chars
        self.api_key = os.environ.get(api_key_env) if api_key_env else None
        self.name = f"openai:{model}@{url}"

    def __call__(self, problem: str, reasoning: str, answer: str) -> float:
        prompt = judge_prompt(problem, reasoning, answer, self.question_chars, self.reasoning_chars)
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": 0,
            "max_tokens": 16,
        }
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.endpoint, json.dumps(body).encode(), headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as reply:
                payload = json.loads(reply.read())
        except (urllib.error.URLError, TimeoutError, ValueError) as error:
            raise JudgeError(f"judge at {self.endpoint}: {error}") from error
        try:
            content = payload["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as error:
            raise JudgeError(f"judge at {self.endpoint}: unexpected reply {str(payload)[:120]}") from error
        return parse_score(content or "")
