"""Teacher generation: one interface over vLLM (in-process), OpenAI-compatible servers and
transformers, a per-request cache that makes killed runs resumable, and rejection sampling.

    from distill.generate import SamplingParams, load_backend, read_prompts, sample_items

    items = read_prompts("problems.jsonl")
    backend = load_backend("openai", "deepseek-r1", base_url="http://127.0.0.1:8000/v1")
    results, stats = sample_items(backend, items, SamplingParams(n=4))
"""

from distill.generate.base import Backend, Completion, GenerationError, Request, SamplingParams, load_backend
from distill.generate.cache import RequestCache
from distill.generate.prompts import PromptItem, read_prompts
from distill.generate.rejection import rejection_sample
from distill.generate.runner import sample_items, trace_row

__all__ = [
    "Backend",
    "Completion",
    "GenerationError",
    "PromptItem",
    "Request",
    "RequestCache",
    "SamplingParams",
    "load_backend",
    "read_prompts",
    "rejection_sample",
    "sample_items",
    "trace_row",
]
