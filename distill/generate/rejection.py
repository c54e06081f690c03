"""Rejection sampling: generate, verify, and regenerate for the problems with no passing sample.

Round 0 draws n samples of every problem. Each later round draws up to n more samples of every
problem that has a reference or tests but no passing sample yet, until it passes or has used
`budget` samples. Sample indices continue across rounds (round 1 asks for samples n..2n-1), so
every attempt is a distinct cached request and a killed run resumes round by round.

Every attempt is kept in the output, passing or not, with its round and verdict in `meta`, so
curating the file puts each one in the ledger (the verify stage drops the failures, with reasons).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from distill.generate.base import Backend, GenerationError, SamplingParams
from distill.generate.cache import RequestCache
from distill.generate.prompts import PromptItem
from distill.generate.runner import RunStats, sample_items, trace_row
from distill.generate.verify import Check, Verifiers


@dataclass
class RoundStats:
    round: int
    problems: int  # problems sampled this round
    samples: int
    passed: int  # passing samples
    solved: int  # problems whose first pass came this round
    unsolved: int  # verifiable problems with no pass after this round


def rejection_sample(
    backend: Backend,
    items: Sequence[PromptItem],
    params: SamplingParams,
    budget: int,
    style: str = "r1",
    cache: RequestCache | None = None,
    progress: bool = True,
    workers: int = 2,
) -> tuple[list[dict[str, Any]], list[RoundStats], RunStats]:
    """Trace rows of every attempt (ordered by problem, then sample), per-round stats, request stats."""
    if budget < params.n:
        raise GenerationError(f"the budget ({budget} samples per problem) must be at least n ({params.n})")
    verifiable = [bool(item.reference or item.tests) for item in items]
    used = [0] * len(items)
    solved = [False] * len(items)
    attempts: list[tuple[int, int, dict[str, Any]]] = []
    rounds: list[RoundStats] = []
    totals = RunStats()
    with Verifiers(workers) as verifiers:
        while True:
            number = len(rounds)
            wanted = [number == 0 or (verifiable[i] and not solved[i]) for i in range(len(items))]
            ranges = [
                range(used[i], used[i] + min(params.n, budget - used[i])) if wanted[i] else range(0)
                for i in range(len(items))
            ]
            if not any(ranges):
                break
            results, stats = sample_items(
                backend, items, params, style, ranges, cache, progress, f"round {number}"
            )
            totals.add(stats)
            verdicts = verifiers([Check(c.text, items[i].reference, items[i].tests) for i, _, c in results])
            newly = set()
            for (i, sample, completion), verdict in zip(results, verdicts, strict=True):
                # No verdict detail: it holds timings, and the same command must write the same file.
                extra = {
                    "round": number,
                    "verify_status": verdict.status,
                    "verify_extracted": verdict.extracted,
                }
                attempts.append(
                    (i, sample, trace_row(items[i], style, sample, completion, backend.model, params, extra))
                )
                if verdict.status == "pass" and not solved[i]:
                    solved[i] = True
                    newly.add(i)
            used = [r.stop if r else u for r, u in zip(ranges, used, strict=True)]
            rounds.append(
                RoundStats(
                    round=number,
                    problems=sum(1 for r in ranges if r),
                    samples=len(results),
                    passed=sum(v.status == "pass" for v in verdicts),
                    solved=len(newly),
                    unsolved=sum(v and not s for v, s in zip(verifiable, solved, strict=True)),
                )
            )
    attempts.sort(key=lambda attempt: attempt[:2])
    return [row for _, _, row in attempts], rounds, totals
