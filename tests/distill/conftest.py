"""Fixtures for the generation, evaluation and merge tests: a tiny transformers model built here,
noisy copies of it as students, and an OpenAI-compatible HTTP server on 127.0.0.1 that serves it
(or scripted answers)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from distill.generate.base import Request, SamplingParams

WORDS = "what is the sum of two and three please reason step by step answer boxed write a function".split()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer Qwen2 with a 300-token BPE trained here, saved in HF format."""
    from distill.sft.tiny import build_model, train_tokenizer

    texts = [
        " ".join(WORDS[i:] + WORDS[:i]) + f" {i} + {i + 1} = {2 * i + 1} \\boxed{{{i}}}"
        for i in range(len(WORDS))
    ]
    tokenizer = train_tokenizer(texts * 4, vocab_size=300)
    model = build_model(tokenizer, hidden_size=32, intermediate_size=64, max_positions=1024)
    out = tmp_path_factory.mktemp("tiny")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture
def noisy_student(tiny_model) -> Callable[..., None]:
    """noisy_student(folder, seed, scale=0.05) writes a copy of the tiny model whose every weight has
    seeded Gaussian noise of that scale added: a stand-in student for the merge tests."""

    def write(folder: Path, seed: int, scale: float = 0.05) -> None:
        import shutil

        import torch
        from safetensors.torch import load_file, save_file

        base = load_file(tiny_model / "model.safetensors")
        shutil.copytree(tiny_model, folder)
        generator = torch.Generator().manual_seed(seed)
        save_file(
            {k: v + scale * torch.randn(v.shape, generator=generator) for k, v in base.items()},
            folder / "model.safetensors",
        )

    return write


@pytest.fixture
def two_students(noisy_student, tmp_path) -> None:
    """Students math and code (noise seeds 0 and 1) in tmp_path, each with a validation file of one
    problem (math.jsonl, code.jsonl)."""
    for index, domain in enumerate(("math", "code")):
        noisy_student(tmp_path / domain, index)
    (tmp_path / "math.jsonl").write_text(json.dumps({"problem": "What is 1 + 1?", "answer": "2"}) + "\n")
    (tmp_path / "code.jsonl").write_text(json.dumps({"problem": "What is 2 + 2?", "answer": "4"}) + "\n")


def request_key(body: dict) -> str:
    """The client's cache key of a request body (base seed 0, so the body's seed is the sample index)."""
    messages = body.get("messages") or [{"role": "user", "content": body.get("prompt")}]
    params = SamplingParams(
        temperature=body["temperature"], top_p=body["top_p"], max_tokens=body["max_tokens"]
    )
    return Request(tuple((m["role"], m["content"]) for m in messages), body["seed"], params).key(
        body["model"]
    )


class TinyServer:
    """Serves /v1/chat/completions and /v1/completions. `log` holds (path, cache key, text) of every
    answered request, in the order the answers were sent; `attempts` counts every request received.

    `answer(body)` replaces the model (scripted answers); `fail(body)` returns an HTTP status to
    fail that request with (or None); `delay` slows every answer down; `hold_after` holds every
    request after the first n until `release()` (they then fail), which freezes a client mid-run.
    A request with `stream: true` is answered as server-sent events, `chunk_chars` characters a
    chunk, `chunk_delay` seconds apart; `reasoning(body)` adds a streamed `reasoning_content`.
    `bodies` holds every request body received and `connections` counts the TCP connections.
    """

    def __init__(self, model_dir: Path | None = None, answer: Callable[[dict], str] | None = None):
        self.answer = answer
        self.fail: Callable[[dict], int | None] = lambda body: None
        self.delay = 0.0
        self.log: list[tuple[str, str, str]] = []
        self.attempts = 0
        self.hold_after: int | None = None  # requests after this many are held, never answered
        self.chunk_chars = 4
        self.chunk_delay = 0.0
        self.reasoning: Callable[[dict], str] | None = None
        self.bodies: list[dict] = []
        self.connections = 0
        self._held = threading.Event()
        self._lock = threading.Lock()
        if model_dir is not None:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
            self.model = AutoModelForCausalLM.from_pretrained(model_dir).eval()

    def release(self) -> None:
        self.hold_after = None
        self._held.set()

    def _generate(self, body: dict) -> tuple[str, int, int]:
        import torch

        if "messages" in body:
            text = self.tokenizer.apply_chat_template(
                body["messages"], tokenize=False, add_generation_prompt=True
            )
        else:
            text = body["prompt"]
        ids = self.tokenizer(text, return_tensors="pt", add_special_tokens=False)
        sampling = {"do_sample": True, "temperature": body["temperature"], "top_p": body["top_p"], "top_k": 0}
        with self._lock, torch.inference_mode():
            torch.manual_seed(body["seed"])
            out = self.model.generate(
                **ids,
                max_new_tokens=body["max_tokens"],
                pad_token_id=self.tokenizer.pad_token_id,
                **(sampling if body["temperature"] > 0 else {"do_sample": False}),
            )
        new = out[0, ids["input_ids"].shape[1] :]
        return self.tokenizer.decode(new, skip_special_tokens=True), ids["input_ids"].shape[1], len(new)

    def handle(self, path: str, body: dict) -> tuple[int, dict]:
        with self._lock:
            self.attempts += 1
            self.bodies.append(body)
            held = self.hold_after is not None and self.attempts > self.hold_after
        if held:  # never answered: wait until the test lets go, then fail
            self._held.wait(60)
            return 503, {"error": {"message": "held request abandoned"}}
        status = self.fail(body)
        if status is not None:
            return status, {"error": {"message": f"scripted failure {status}"}}
        if self.answer is not None:
            text, prompt_tokens, completion_tokens = self.answer(body), 0, 0
        else:
            text, prompt_tokens, completion_tokens = self._generate(body)
        time.sleep(self.delay)
        choice = {
            "index": 0,
            "finish_reason": "length" if completion_tokens >= body["max_tokens"] else "stop",
        }
        if path == "/v1/chat/completions":
            choice["message"] = {"role": "assistant", "content": text}
            if self.reasoning is not None:
                choice["message"]["reasoning_content"] = self.reasoning(body)
        else:
            choice["text"] = text
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}
        return 200, {
            "object": "chat.completion",
            "choices": [choice],
            "usage": usage,
            "_key": request_key(body),
        }


@pytest.fixture
def serve() -> Iterator[Callable[..., tuple[TinyServer, str]]]:
    """serve(model_dir=..., answer=...) starts a TinyServer on a free port of 127.0.0.1: (app, /v1 URL)."""
    servers: list[ThreadingHTTPServer] = []

    def start(
        model_dir: Path | None = None, answer: Callable[[dict], str] | None = None
    ) -> tuple[TinyServer, str]:
        app = TinyServer(model_dir, answer)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real servers do

            def setup(self):
                super().setup()
                with app._lock:
                    app.connections += 1

            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path not in ("/v1/chat/completions", "/v1/completions"):
                    status, payload = 404, {"error": {"message": "not found"}}
                else:
                    status, payload = app.handle(self.path, body)
                if status == 200 and body.get("stream"):
                    self.stream(payload)
                else:
                    data = json.dumps(payload).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    if status == 429:
                        self.send_header("Retry-After", "0")
                    self.end_headers()
                    self.wfile.write(data)
                    if status == 200:
                        self.log_answer(payload)

            def log_answer(self, payload: dict) -> None:
                choice = payload["choices"][0]
                text = choice["message"]["content"] if "message" in choice else choice["text"]
                app.log.append((self.path, payload["_key"], text))

            def stream(self, payload: dict) -> None:
                """The answer as server-sent events in chunked transfer encoding, then [DONE]."""
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                choice = payload["choices"][0]
                message = choice.get("message")
                pieces = []
                for field in ("reasoning_content", "content") if message else ("text",):
                    text = (message or choice).get(field) or ""
                    for i in range(0, len(text), app.chunk_chars):
                        part = text[i : i + app.chunk_chars]
                        pieces.append({"delta": {field: part}} if message else {"text": part})
                events = [{"choices": [{"index": 0, **piece, "finish_reason": None}]} for piece in pieces]
                events.append(
                    {"choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}]}
                )
                events.append({"choices": [], "usage": payload["usage"]})
                for event in [*events, "[DONE]"]:
                    data = (f"data: {event if isinstance(event, str) else json.dumps(event)}\n\n").encode()
                    self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
                    self.wfile.flush()
                    time.sleep(app.chunk_delay)
                # Logged before the stream's last bytes: the client cannot have the answer before the log.
                self.log_answer(payload)
                self.wfile.write(b"0\r\n\r\n")

            def log_message(self, *args):  # keep the test output quiet
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return app, f"http://127.0.0.1:{server.server_address[1]}/v1"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def prompts_file(tmp_path) -> Callable[[list[tuple[str, str]]], Path]:
    """prompts_file([(problem, answer), ...]) writes a prompt file and returns its path."""

    def write(problems: list[tuple[str, str]], name: str = "prompts.jsonl") -> Path:
        path = tmp_path / name
        path.write_text("".join(json.dumps({"problem": p, "answer": a}) + "\n" for p, a in problems))
        return path

    return write
