"""Any OpenAI-compatible HTTP endpoint: vLLM and SGLang servers, hosted APIs.

Requests run concurrently under asyncio with at most `concurrency` in flight. The HTTP calls
themselves are stdlib `urllib` calls in a thread pool of the same size, which keeps the
dependency list empty and handles TLS and proxies the way the rest of Python does.

A request that fails with a transient error (connection refused or reset, timeout, 408, 409,
429, 5xx, a body that is not JSON) is retried with exponential backoff and jitter, honouring a
`Retry-After` header; other errors (400 prompt too long, 401 bad key, 404 unknown model) are not
retried. Requests that still fail are reported together after every other request has finished
(and been cached), so a rerun only has to retry those.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from distill.generate.base import Backend, Completion, Emit, GenerationError, Request

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
ENDPOINTS = ("chat", "completions")


class TransientError(Exception):
    """Worth retrying; `retry_after` is the server's hint in seconds, if it gave one."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class RequestFailed(Exception):
    """Not worth retrying (or out of retries)."""


class OpenAIBackend(Backend):
    name = "openai"

    def __init__(
        self,
        model: str,
        base_url: str = "http://127.0.0.1:8000/v1",
        api_key: str | None = None,
        concurrency: int = 32,
        endpoint: str = "chat",
        max_retries: int = 6,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        timeout: float = 600.0,
        extra_body: dict[str, Any] | None = None,
    ):
        super().__init__(model)
        if endpoint not in ENDPOINTS:
            raise GenerationError(f"unknown endpoint {endpoint!r}; choose one of {', '.join(ENDPOINTS)}")
        if concurrency < 1:
            raise GenerationError("concurrency must be >= 1")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.concurrency = concurrency
        self.endpoint = endpoint
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self.extra_body = extra_body or {}

    # -- one HTTP call (runs in a worker thread) ------------------------------------------------

    def _payload(self, request: Request) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {
            "model": self.model,
            "n": 1,
            "temperature": request.params.temperature,
            "top_p": request.params.top_p,
            "max_tokens": request.params.max_tokens,
            "seed": request.seed,
            **self.extra_body,
        }
        if self.endpoint == "chat":
            body["messages"] = request.chat()
            return "/chat/completions", body
        # A completions endpoint takes text: the user turns joined (for base models and raw prompts).
        body["prompt"] = "\n\n".join(content for _, content in request.messages)
        return "/completions", body

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        http = urllib.request.Request(self.base_url + path, data=json.dumps(body).encode(), headers=headers)
        try:
            with urllib.request.urlopen(http, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            text = error.read().decode("utf-8", "replace")[:500]
            message = f"HTTP {error.code} from {self.base_url + path}: {text}"
            if error.code in RETRY_STATUS:
                raise TransientError(message, _retry_after(error.headers.get("Retry-After"))) from error
            raise RequestFailed(message) from error
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as error:
            raise TransientError(f"{type(error).__name__}: {error}") from error
        try:
            return json.loads(raw)
        except ValueError as error:
            raise TransientError(f"the server sent a body that is not JSON: {raw[:200]!r}") from error

    def _completion(self, data: dict[str, Any]) -> Completion:
        try:
            choice = data["choices"][0]
            if self.endpoint == "chat":
                message = choice["message"]
                text = message.get("content") or ""
                # Reasoning servers (vLLM's reasoning parser, DeepSeek's API) split the thinking off;
                # put it back in R1 form so the trace keeps it.
                thinking = message.get("reasoning_content") or message.get("reasoning")
                if thinking:
                    text = f"<think>\n{thinking}\n</think>\n\n{text}"
            else:
                text = choice["text"]
        except (KeyError, IndexError, TypeError) as error:
            raise TransientError(f"unexpected response shape: {json.dumps(data)[:200]}") from error
        usage = data.get("usage") or {}
        return Completion(
            text, choice.get("finish_reason"), usage.get("prompt_tokens"), usage.get("completion_tokens")
        )

    # -- the async driver -----------------------------------------------------------------------

    def _delay(self, attempt: int, hint: float | None) -> float:
        if hint is not None:
            return min(hint, self.max_backoff)
        # Full jitter: spreads the retries of many concurrent requests that failed together.
        return random.uniform(0, min(self.max_backoff, self.backoff * 2**attempt))

    async def _one(self, pool: ThreadPoolExecutor, request: Request) -> Completion:
        loop = asyncio.get_running_loop()
        path, body = self._payload(request)
        for attempt in range(self.max_retries + 1):
            try:
                data = await loop.run_in_executor(pool, self._post, path, body)
                return self._completion(data)
            except TransientError as error:
                if attempt == self.max_retries:
                    raise RequestFailed(f"{error} (gave up after {attempt + 1} attempts)") from error
                await asyncio.sleep(self._delay(attempt, error.retry_after))
        raise AssertionError("unreachable")

    async def _run(self, requests: Sequence[Request], emit: Emit) -> list[str]:
        failures: list[str] = []
        limit = asyncio.Semaphore(self.concurrency)

        async def guarded(i: int, request: Request) -> None:
            async with limit:
                try:
                    completion = await self._one(pool, request)
                except RequestFailed as error:
                    failures.append(str(error))
                    return
            emit(i, completion)

        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="openai") as pool:
            await asyncio.gather(*(guarded(i, request) for i, request in enumerate(requests)))
        return failures

    def generate(self, requests: Sequence[Request], emit: Emit) -> None:
        failures = asyncio.run(self._run(requests, emit))
        if failures:
            raise GenerationError(
                f"{len(failures)} of {len(requests)} request(s) failed; the others are cached, rerun to retry. "
                f"First error: {failures[0]}"
            )


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:  # an HTTP date; rare enough to fall back to our own backoff
        return None
