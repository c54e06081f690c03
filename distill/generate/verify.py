"""The one place distill calls the verifiers (curate.verify.math and curate.verify.code).

Rejection sampling and evaluation both need "is this response right?" for a batch of
(response, reference, tests) rows; this module answers it with the pipeline's own verifiers, so
a sample the generator keeps is one the curate verify stage would keep too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


def verify(checks: Sequence[Check], workers: int = 2) -> list[Verdict]:
    """A verdict per check, in order; math and code checks go to their verifiers as two batches."""
    verdicts: list[Verdict | None] = [None] * len(checks)
    for kind, run in (("math", _math), ("code", _code)):
        index = [i for i, check in enumerate(checks) if check.kind == kind]
        if index:
            for i, verdict in zip(index, run([checks[i] for i in index], workers), strict=True):
                verdicts[i] = verdict
    return verdicts  # type: ignore[return-value]


def _math(checks: list[Check], workers: int) -> list[Verdict]:
    from curate.verify.math import verify_math_batch

    return verify_math_batch(((check.response, check.reference) for check in checks), workers=workers)


def _code(checks: list[Check], workers: int) -> list[Verdict]:
    raise NotImplementedError("code verification is not wired yet")
