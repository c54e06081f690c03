"""Any OpenAI-compatible HTTP endpoint: vLLM and SGLang servers, hosted APIs.

Requests run concurrently under asyncio with at most `concurrency` in flight. The HTTP calls
themselves are stdlib `http.client` calls in a thread pool of the same size, each thread keeping
its connection open between requests (keep-alive), which keeps the dependency list empty.

Responses are streamed by default (`stream: true`, server-sent events): `timeout` then bounds the
silence between two chunks, not the whole generation, so a 30k-token trace at 30 tokens/s is not
cut at the timeout and sent again from scratch. Without streaming, it bounds the whole response.

A request that fails with a transient error (connection refused or reset, timeout, 408, 409,
429, 5xx, a body that is not JSON) is retried with exponential backoff and jitter, honouring a
`Retry-After` header; other errors (400 prompt too long, 401 bad key, 404 unknown model) are not
retried. Requests that still fail are reported together after every other request has finished
(and been cached), so a rerun only has to retry those.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import random
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
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
        stream: bool = True,
    ):
        super().__init__(model)
        if endpoint not in ENDPOINTS:
            raise GenerationError(f"unknown endpoint {endpoint!r}; choose one of {', '.join(ENDPOINTS)}")
        if concurrency < 1:
            raise GenerationError("concurrency must be >= 1")
        if timeout <= 0:
            raise GenerationError("timeout must be > 0 seconds")
        if not isinstance(extra_body, dict | None):
            raise GenerationError(f"extra_body must be a JSON object, got {type(extra_body).__name__}")
        self.base_url = base_url.rstrip("/")
        parsed = urllib.parse.urlsplit(self.base_url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise GenerationError(f"base_url {base_url!r}: expected http(s)://host[:port]/v1")
        self._url = parsed
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.concurrency = concurrency
        self.endpoint = endpoint
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self.extra_body = extra_body or {}
        self.stream = stream
        self._local = threading.local()  # one keep-alive connection per worker thread

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
        if self.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        if self.endpoint == "chat":
            body["messages"] = request.chat()
            return "/chat/completions", body
        # A completions endpoint takes text: the user turns joined (for base models and raw prompts).
        body["prompt"] = "\n\n".join(content for _, content in request.messages)
        return "/completions", body

    def sampling_extras(self) -> dict[str, Any]:
        return self.extra_body

    def _connection(self, fresh: bool = False) -> http.client.HTTPConnection:
        """This thread's connection to the server (through the environment's proxy, if any)."""
        connection = getattr(self._local, "connection", None)
        if connection is not None and not fresh:
            return connection
        if connection is not None:
            connection.close()
        url = self._url
        port = url.port or (443 if url.scheme == "https" else 80)
        proxy = urllib.request.getproxies().get(url.scheme)
        cls = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        if proxy and not urllib.request.proxy_bypass(url.hostname):
            address = urllib.parse.urlsplit(proxy)
            connection = cls(address.hostname, address.port or 8080, timeout=self.timeout)
            connection.set_tunnel(url.hostname, port)
        else:
            connection = cls(url.hostname, port, timeout=self.timeout)
        self._local.connection = connection
        return connection

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": "application/json", "Connection": "keep-alive"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        target = self._url.path + path
        data = json.dumps(body).encode()
        try:
            try:
                connection = self._connection()
                connection.request("POST", target, body=data, headers=headers)
                response = connection.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # The server closed the idle keep-alive connection: one fresh try, then it is an error.
                connection = self._connection(fresh=True)
                connection.request("POST", target, body=data, headers=headers)
                response = connection.getresponse()
            if response.status != 200:
                text = response.read().decode("utf-8", "replace")[:500]
                message = f"HTTP {response.status} from {self.base_url + path}: {text}"
                if response.status in RETRY_STATUS:
                    raise TransientError(message, _retry_after(response.getheader("Retry-After")))
                raise RequestFailed(message)
            streamed = "text/event-stream" in (response.getheader("Content-Type") or "")
            if streamed:
                data = _assemble_stream(_events(response), chat=self.endpoint == "chat")
                response.read()  # the rest of the stream, so that the connection can be reused
                return data
            raw = response.read()
        except (http.client.HTTPException, ConnectionError, TimeoutError, OSError) as error:
            self._connection(fresh=True)  # the connection's state is unknown after a failure
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
        self._local = threading.local()  # the worker threads are gone; so are their connections
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


def _events(response: http.client.HTTPResponse) -> Iterator[dict[str, Any]]:
    """The JSON payloads of a server-sent event stream, up to `data: [DONE]`."""
    for line in response:
        line = line.strip()
        if not line.startswith(b"data:"):
            continue  # blank separators, comments (": ping"), event names
        payload = line[5:].strip()
        if payload == b"[DONE]":
            return
        try:
            yield json.loads(payload)
        except ValueError as error:
            raise TransientError(
                f"the server streamed a chunk that is not JSON: {payload[:200]!r}"
            ) from error


def _assemble_stream(events: Iterator[dict[str, Any]], chat: bool) -> dict[str, Any]:
    """A streamed response put back into the shape of a non-streamed one (first choice only)."""
    text, thinking, finish, usage = [], [], None, None
    for event in events:
        if event.get("error"):
            raise TransientError(f"the server sent an error mid-stream: {json.dumps(event['error'])[:300]}")
        usage = event.get("usage") or usage
        for choice in event.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            if chat:
                delta = choice.get("delta") or {}
                text.append(delta.get("content") or "")
                thinking.append(delta.get("reasoning_content") or delta.get("reasoning") or "")
            else:
                text.append(choice.get("text") or "")
            finish = choice.get("finish_reason") or finish
    if finish is None:
        raise TransientError("the stream ended before the server said why the generation stopped")
    if chat:
        choice = {"message": {"content": "".join(text), "reasoning_content": "".join(thinking)}}
    else:
        choice = {"text": "".join(text)}
    return {"choices": [{**choice, "finish_reason": finish}], "usage": usage or {}}
