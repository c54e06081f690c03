"""What every generation backend shares: sampling parameters, requests, completions, the backend
interface and the registry that maps a backend name to its module.

One request is one sample: a prompt with n samples is n requests that differ only in their sample
index (and so in their seed). That is what lets the cache store and resume work sample by sample,
and what lets rejection sampling ask for "samples 4 to 7" of a problem without redoing 0 to 3.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar


class GenerationError(Exception):
    """A problem the user can fix: a bad option, a missing backend, requests that kept failing."""

    user_error = True


@dataclass(frozen=True)
class SamplingParams:
    """How to sample. Temperature 0 means greedy decoding."""

    n: int = 1
    temperature: float = 0.6
    top_p: float = 0.95
    max_tokens: int = 32768  # R1-style traces run to tens of thousands of tokens
    seed: int = 0

    def __post_init__(self) -> None:
        checks = [
            (self.n >= 1, "n must be >= 1"),
            (self.temperature >= 0, "temperature must be >= 0"),
            (0 < self.top_p <= 1, "top-p must be in (0, 1]"),
            (self.max_tokens >= 1, "max-tokens must be >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise GenerationError(message)


@dataclass(frozen=True)
class Request:
    """One sample of one prompt."""

    messages: tuple[tuple[str, str], ...]  # (role, content) pairs, hashable
    sample: int
    params: SamplingParams

    @property
    def seed(self) -> int:
        # Each sample gets its own seed, so sample k is the same request whichever run asks for it.
        return self.params.seed * 1_000_003 + self.sample

    def chat(self) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in self.messages]

    def key(self, model: str, extra: dict[str, Any] | None = None) -> str:
        """Cache key: everything that decides what the teacher returns (n is not: one request, one
        sample). `extra` is the backend's other sampling settings (Backend.sampling_extras)."""
        payload = {
            "model": model,
            "messages": self.messages,
            "temperature": self.params.temperature,
            "top_p": self.params.top_p,
            "max_tokens": self.params.max_tokens,
            "seed": self.seed,
        }
        if extra:  # only when set, so that keys of runs without extras stay what they were
            payload["extra"] = extra
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str | None = None  # "stop", "length", ... as the backend reports it
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


Emit = Callable[[int, Completion], None]


class Backend:
    """A teacher. `generate` calls `emit(i, completion)` for each finished request i, in any order,
    as soon as it is done (so the caller can cache it before the next one finishes)."""

    name: ClassVar[str]

    def __init__(self, model: str):
        self.model = model

    def generate(self, requests: Sequence[Request], emit: Emit) -> None:
        raise NotImplementedError

    def sampling_extras(self) -> dict[str, Any]:
        """Settings beyond SamplingParams that change what the teacher returns (part of the cache key)."""
        return {}

    def close(self) -> None:
        """Release the model or connections."""


# name -> "module:class"; modules are imported only when chosen (vLLM and torch are heavy).
BACKENDS = {
    "openai": "distill.generate.openai:OpenAIBackend",
    "hf": "distill.generate.hf:HFBackend",
    "vllm": "distill.generate.vllm:VLLMBackend",
}


def load_backend(name: str, model: str, **options: Any) -> Backend:
    """An instance of backend `name` for `model`, with that backend's keyword options."""
    if name not in BACKENDS:
        raise GenerationError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    module, _, cls = BACKENDS[name].partition(":")
    backend_cls = getattr(importlib.import_module(module), cls)
    return backend_cls(model, **options)
