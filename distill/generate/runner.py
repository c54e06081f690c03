"""Running requests through a backend with the cache, and turning completions into trace rows.

Rows come out in a fixed order (prompt order, then sample index) whatever order the backend
finished them in, so the same command gives the same file, resumed or not.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distill.generate.base import Backend, Completion, Request, SamplingParams
from distill.generate.cache import RequestCache
from distill.generate.prompts import PromptItem


@dataclass
class RunStats:
    requests: int = 0
    cached: int = 0
    generated: int = 0
    seconds: float = 0.0
    finish_reasons: dict[str, int] = field(default_factory=dict)

    def add(self, other: RunStats) -> None:
        self.requests += other.requests
        self.cached += other.cached
        self.generated += other.generated
        self.seconds += other.seconds
        for reason, count in other.finish_reasons.items():
            self.finish_reasons[reason] = self.finish_reasons.get(reason, 0) + count


def complete(
    backend: Backend,
    requests: Sequence[Request],
    cache: RequestCache | None = None,
    progress: bool = True,
    desc: str = "generate",
) -> tuple[list[Completion], RunStats]:
    """A completion for every request, from the cache when it has it, else from the backend.

    Each new completion is cached the moment the backend reports it. If the backend raises (a
    request kept failing, the process is interrupted), what finished stays cached for the rerun.
    """
    from tqdm import tqdm

    started = time.perf_counter()
    extras = backend.sampling_extras()
    keys = [request.key(backend.model, extras) for request in requests]
    results: list[Completion | None] = [None] * len(requests)
    found = cache.get_many(keys) if cache else {}
    waiting: dict[str, list[int]] = {}  # identical requests (the same problem twice) are sent once
    for i, key in enumerate(keys):
        if key in found:
            results[i] = found[key]
        else:
            waiting.setdefault(key, []).append(i)
    todo = list(waiting)
    stats = RunStats(requests=len(requests), cached=len(requests) - sum(len(v) for v in waiting.values()))

    with tqdm(total=len(todo), desc=desc, unit="req", disable=not progress or not todo) as bar:

        def emit(j: int, completion: Completion) -> None:
            key = todo[j]
            for i in waiting[key]:
                results[i] = completion
            if cache is not None:
                cache.put(key, completion)
            stats.generated += 1
            bar.update()

        if todo:
            backend.generate([requests[waiting[key][0]] for key in todo], emit)

    missing = sum(result is None for result in results)
    if missing:
        raise RuntimeError(f"backend {backend.name} returned no completion for {missing} request(s)")
    for result in results:
        reason = result.finish_reason or "unknown"
        stats.finish_reasons[reason] = stats.finish_reasons.get(reason, 0) + 1
    stats.seconds = time.perf_counter() - started
    return results, stats  # type: ignore[return-value]


def trace_row(
    item: PromptItem,
    style: str,
    sample: int,
    completion: Completion,
    teacher: str,
    params: SamplingParams,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One teacher sample as a trace record (design §2); generation details go to meta."""
    from curate.schema import problem_id, split_think, trace_id

    problem = item.prompt(style)
    meta = {
        **item.meta,
        "origin": item.origin,
        "prompt_style": style,
        "sample": sample,
        "finish_reason": completion.finish_reason,
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "max_tokens": params.max_tokens,
        "seed": params.seed,
        **(extra or {}),
    }
    return {
        "id": trace_id(problem, completion.text),
        "problem_id": problem_id(problem),
        "source": item.source,
        "problem": problem,
        "reasoning": split_think(completion.text),
        "response": completion.text,
        "reference": item.reference,
        "tests": item.tests,
        "domain": item.domain,
        "teacher": teacher,
        "meta": meta,
    }


def sample_items(
    backend: Backend,
    items: Sequence[PromptItem],
    params: SamplingParams,
    style: str = "r1",
    samples: Sequence[range] | None = None,
    cache: RequestCache | None = None,
    progress: bool = True,
    desc: str = "generate",
) -> tuple[list[tuple[int, int, Completion]], RunStats]:
    """(item index, sample index, completion) for samples[i] of each item (default: 0..n-1)."""
    ranges = samples if samples is not None else [range(params.n)] * len(items)
    wanted = [(i, s) for i, item_samples in enumerate(ranges) for s in item_samples]
    requests = [Request(items[i].messages(style), s, params) for i, s in wanted]
    completions, stats = complete(backend, requests, cache, progress, desc)
    return [(i, s, c) for (i, s), c in zip(wanted, completions, strict=True)], stats


def write_jsonl(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Write rows as JSON lines, atomically: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table: the first column left-aligned, the others right-aligned."""
    cells = [[str(c) for c in header]] + [[_cell(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return "-" if value is None else str(value)
