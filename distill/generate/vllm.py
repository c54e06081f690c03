"""vLLM in-process (extra `vllm`, GPU): the fast path for large teachers on the machine you run on.

Requests go to vLLM in chunks of `chunk_size` (it batches each chunk itself, continuously); each
chunk is cached when it is done, so a killed run loses at most one chunk. Every request carries
its own seed, so sample k of a prompt is the same whatever else is in the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from distill.generate.base import Backend, Completion, Emit, GenerationError, Request


class VLLMBackend(Backend):
    name = "vllm"

    def __init__(
        self,
        model: str,
        tensor_parallel_size: int = 1,
        max_model_len: int | None = None,
        gpu_memory_utilization: float = 0.9,
        chunk_size: int = 2048,
        **engine_args: Any,
    ):
        super().__init__(model)
        self.chunk_size = chunk_size
        try:
            import vllm
        except ImportError as error:
            raise GenerationError(
                "the vllm backend needs vLLM: pip install 'distillery[vllm]' (or use --backend openai against a "
                "vLLM server, or --backend hf)"
            ) from error
        self._vllm = vllm
        self.llm = vllm.LLM(
            model=model,
            tensor_parallel_size=tensor_parallel_size,
            max_model_len=max_model_len,
            gpu_memory_utilization=gpu_memory_utilization,
            **engine_args,
        )

    def generate(self, requests: Sequence[Request], emit: Emit) -> None:
        params = [
            self._vllm.SamplingParams(
                n=1,
                temperature=r.params.temperature,
                top_p=r.params.top_p,
                max_tokens=r.params.max_tokens,
                seed=r.seed,
            )
            for r in requests
        ]
        for start in range(0, len(requests), self.chunk_size):
            chunk = range(start, min(start + self.chunk_size, len(requests)))
            outputs = self.llm.chat(
                [requests[i].chat() for i in chunk], [params[i] for i in chunk], use_tqdm=False
            )
            for i, output in zip(chunk, outputs, strict=True):
                sample = output.outputs[0]
                emit(
                    i,
                    Completion(
                        sample.text, sample.finish_reason, len(output.prompt_token_ids), len(sample.token_ids)
                    ),
                )

    def close(self) -> None:
        del self.llm
