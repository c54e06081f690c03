"""The OpenAI-compatible backend against a real HTTP server on 127.0.0.1 serving a tiny model:
concurrency, n > 1, kill and resume without repeating finished requests, retries, both endpoints."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from distill.generate.base import GenerationError, Request, SamplingParams
from distill.generate.cache import RequestCache
from distill.generate.openai import OpenAIBackend
from distill.generate.runner import complete

REPO = Path(__file__).resolve().parents[2]


def cached_keys(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {key for (key,) in db.execute("SELECT key FROM completions")}


def generate_command(url: str, prompts: Path, out: Path) -> list[str]:
    return [
        sys.executable, "-m", "distill.cli", "generate", "--backend", "openai", "--base-url", url,
        "--teacher", "tiny", "--prompts", str(prompts), "--out", str(out),
        "-n", "3", "--concurrency", "4", "--max-tokens", "6", "--temperature", "1.0", "--quiet",
    ]  # fmt: skip


def test_killed_run_resumes_without_repeating_finished_requests(tiny_model, serve, prompts_file, tmp_path):
    app, url = serve(model_dir=tiny_model)
    app.hold_after = 10  # the client gets 10 answers, then its requests hang until it is killed
    prompts = prompts_file([(f"What is {i} + {i + 1}?", str(2 * i + 1)) for i in range(12)])
    out = tmp_path / "traces.jsonl"
    cache = tmp_path / "traces.jsonl.cache.sqlite"
    total = 12 * 3

    client = subprocess.Popen(generate_command(url, prompts, out), cwd=REPO, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while client.poll() is None and time.monotonic() < deadline:
        if len(app.log) == 10 and cache.exists() and len(cached_keys(cache)) == 10:
            break
        time.sleep(0.02)
    os.kill(client.pid, signal.SIGKILL)
    client.wait()
    assert client.returncode == -signal.SIGKILL, client.stderr.read().decode()
    app.release()

    finished = cached_keys(cache)
    answered_before = len(app.log)
    assert not out.exists()
    assert len(finished) == answered_before == 10
    assert finished == {key for _, key, _ in app.log}
    assert app.attempts > 10  # requests were in flight when the client died

    result = subprocess.run(
        generate_command(url, prompts, out), cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    resumed = [key for _, key, _ in app.log[answered_before:]]
    assert finished.isdisjoint(resumed)  # no finished request was sent again
    assert len(resumed) == len(set(resumed)) == total - len(finished)
    assert cached_keys(cache) == finished | set(resumed)

    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == total
    assert [(r["problem"].split("\n")[0], r["meta"]["sample"]) for r in rows] == [
        (f"What is {i} + {i + 1}?", s) for i in range(12) for s in range(3)
    ]
    assert {r["teacher"] for r in rows} == {"tiny"}
    assert all(r["reference"] == str(2 * i + 1) for i in range(12) for r in rows[3 * i : 3 * i + 3])
    # Each row holds the text the server generated for that request, whichever run asked for it.
    served = {key: text for _, key, text in app.log}
    params = SamplingParams(n=3, temperature=1.0, max_tokens=6)
    for row in rows:
        key = Request((("user", row["problem"]),), row["meta"]["sample"], params).key("tiny")
        assert row["response"] == served[key]


def test_transient_errors_are_retried_and_permanent_ones_reported(serve, tmp_path):
    app, url = serve(answer=lambda body: f"echo {body['messages'][0]['content']}")
    failed_once: set[str] = set()

    def fail(body: dict) -> int | None:
        prompt = body["messages"][0]["content"]
        if prompt == "bad":
            return 400
        if prompt not in failed_once:  # every other request fails on its first attempt
            failed_once.add(prompt)
            return 429 if prompt.endswith("0") else 503
        return None

    app.fail = fail
    params = SamplingParams(max_tokens=4)
    requests = [Request((("user", f"q{i}"),), 0, params) for i in range(6)]
    backend = OpenAIBackend("m", base_url=url, concurrency=3, backoff=0.01, max_retries=3)
    with RequestCache(tmp_path / "cache.sqlite") as cache:
        completions, stats = complete(backend, requests, cache, progress=False)
        assert [c.text for c in completions] == [f"echo q{i}" for i in range(6)]
        assert app.attempts == 12 and stats.generated == 6

        # A 400 is not retried; the other requests of the run still finish and are cached.
        with pytest.raises(GenerationError, match="1 of 2 request"):
            complete(
                backend,
                [Request((("user", "bad"),), 0, params), Request((("user", "q9"),), 0, params)],
                cache,
                progress=False,
            )
        assert app.attempts == 12 + 1 + 2
        assert len(cache) == 7


def test_retries_give_up_after_max_retries(serve):
    app, url = serve(answer=lambda body: "never")
    app.fail = lambda body: 503
    backend = OpenAIBackend("m", base_url=url, backoff=0.001, max_retries=2)
    with pytest.raises(GenerationError, match="gave up after 3 attempts"):
        complete(backend, [Request((("user", "q"),), 0, SamplingParams())], progress=False)
    assert app.attempts == 3


def test_completions_endpoint_and_unreachable_server(tiny_model, serve):
    app, url = serve(model_dir=tiny_model)
    backend = OpenAIBackend("tiny", base_url=url, endpoint="completions")
    params = SamplingParams(n=2, temperature=0.0, max_tokens=5)
    completions, _ = complete(
        backend, [Request((("user", "what is two"),), s, params) for s in range(2)], progress=False
    )
    assert [path for path, _, _ in app.log] == ["/v1/completions"] * 2
    assert completions[0].text == completions[1].text  # greedy: both samples agree
    assert completions[0].completion_tokens == 5 and completions[0].finish_reason == "length"

    dead = OpenAIBackend("tiny", base_url="http://127.0.0.1:9/v1", backoff=0.001, max_retries=1)
    with pytest.raises(GenerationError, match="ConnectionRefusedError|URLError"):
        complete(dead, [Request((("user", "x"),), 0, params)], progress=False)


def test_reasoning_content_is_put_back_in_think_tags():
    backend = OpenAIBackend("m")
    data = {
        "choices": [
            {
                "message": {"content": "The answer is 4.", "reasoning_content": "2+2=4"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 9},
    }
    completion = backend._completion(data)
    assert completion.text == "<think>\n2+2=4\n</think>\n\nThe answer is 4."
    assert (completion.finish_reason, completion.prompt_tokens, completion.completion_tokens) == (
        "stop",
        3,
        9,
    )


def test_a_streamed_generation_outlives_a_timeout_shorter_than_itself(serve):
    app, url = serve(answer=lambda body: "a long trace, " * 4)
    app.chunk_chars, app.chunk_delay = 8, 0.3  # 9 events 0.3 s apart: ~2.7 s in all
    request = [Request((("user", "q"),), 0, SamplingParams(max_tokens=8))]
    streamed = OpenAIBackend("m", base_url=url, timeout=1.5, max_retries=0)
    completions, _ = complete(streamed, request, progress=False)
    assert completions[0].text == "a long trace, " * 4
    assert completions[0].finish_reason == "stop"

    # The same answer without streaming is one read of the whole body, which the timeout cuts.
    app.delay = 2.7
    whole = OpenAIBackend("m", base_url=url, timeout=1.5, max_retries=0, stream=False)
    with pytest.raises(GenerationError, match="timed out"):
        complete(whole, request, progress=False)


def test_connections_are_reused_and_streamed_reasoning_is_kept(serve):
    app, url = serve(answer=lambda body: "The answer is \\boxed{2}.")
    app.reasoning = lambda body: "one plus one is two"
    backend = OpenAIBackend("m", base_url=url, concurrency=2)
    requests = [Request((("user", f"q{i}"),), 0, SamplingParams(max_tokens=8)) for i in range(12)]
    completions, _ = complete(backend, requests, progress=False)
    assert app.attempts == 12
    assert app.connections <= 2  # one keep-alive connection per worker thread, not one per request
    assert {c.text for c in completions} == {
        "<think>\none plus one is two\n</think>\n\nThe answer is \\boxed{2}."
    }
    assert all(body["stream"] is True for body in app.bodies)


def test_extra_body_reaches_the_server_and_keys_the_cache(serve, tmp_path):
    app, url = serve(answer=lambda body: f"top_k {body.get('top_k')}")
    request = [Request((("user", "q"),), 0, SamplingParams(max_tokens=8))]
    extra = {"top_k": 20, "min_p": 0.0, "chat_template_kwargs": {"enable_thinking": True}}
    with RequestCache(tmp_path / "cache.sqlite") as cache:
        plain, _ = complete(OpenAIBackend("m", base_url=url), request, cache, progress=False)
        tuned, _ = complete(
            OpenAIBackend("m", base_url=url, extra_body=extra), request, cache, progress=False
        )
        again, stats = complete(
            OpenAIBackend("m", base_url=url, extra_body=extra), request, cache, progress=False
        )
    assert [plain[0].text, tuned[0].text, again[0].text] == ["top_k None", "top_k 20", "top_k 20"]
    assert stats.cached == 1 and app.attempts == 2  # other extras, another request; same extras, cached
    assert {k: app.bodies[1][k] for k in extra} == extra


def test_generate_cli_rejects_an_extra_body_that_is_not_an_object(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "distill.cli", "generate", "--teacher", "m", "--prompts", "p.jsonl",
         "--out", str(tmp_path / "o.jsonl"), "--backend", "openai", "--extra-body", "[1, 2]"],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--extra-body: expected a JSON object, got list" in result.stderr
