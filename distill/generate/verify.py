"""The one place distill calls the verifiers (curate.verify.math and curate.verify.code).

Rejection sampling and evaluation both need "is this response right?" for a batch of
(response, reference, tests) rows; this module answers it with the pipeline's own verifiers, so
a sample the generator keeps is one the curate verify stage would keep too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from curate.verify.result import Verdict


@dataclass(frozen=True)
class Check:
    """What a verifier needs: the response and either tests (code) or a reference answer (math, choice)."""

    response: str | None
    reference: str | None = None
    tests: str | None = None

    @property
    def kind(self) -> str:
        return "code" if self.tests else "math"


class Verifiers:
    """Math and code verifier pools, started on first use and kept for later batches (starting a
    sandboxed code pool takes a moment; rejection sampling verifies once per round)."""

    def __init__(self, workers: int = 2):
        self.workers = workers
        self._pools: dict[str, Any] = {}

    def _pool(self, kind: str) -> Any:
        if kind not in self._pools:
            if kind == "math":
                from curate.verify.math import MathVerifier

                self._pools[kind] = MathVerifier(workers=self.workers)
            else:
                from curate.verify.code import CodeVerifier

                self._pools[kind] = CodeVerifier(workers=self.workers)
        return self._pools[kind]

    def __call__(self, checks: Sequence[Check]) -> list[Verdict]:
        """A verdict per check, in order; math and code checks go to their pools as two batches."""
        verdicts: list[Verdict | None] = [None] * len(checks)
        for kind in ("math", "code"):
            index = [i for i, check in enumerate(checks) if check.kind == kind]
            if not index:
                continue
            if kind == "math":
                work = ((checks[i].response, checks[i].reference) for i in index)
            else:
                work = ({"response": checks[i].response, "tests": checks[i].tests} for i in index)
            for i, verdict in zip(index, self._pool(kind).map(work), strict=True):
                verdicts[i] = verdict
        return verdicts  # type: ignore[return-value]

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()

    def __enter__(self) -> Verifiers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def verify(checks: Sequence[Check], workers: int = 2) -> list[Verdict]:
    """One batch with pools started for it and closed after."""
    with Verifiers(workers) as verifiers:
        return verifiers(checks)
