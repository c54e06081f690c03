"""Math answer verification: extract the final answer, parse it, decide equivalence with sympy.

    from curate.verify.math import MathVerifier, check_math

    check_math(response, "\\\\frac{1}{2}")           # one check, isolated, -> Verdict
    with MathVerifier(workers=2, timeout=5) as verifier:
        verdicts = list(verifier.map(pairs))      # many (response, reference) pairs, in order

Every check runs in a killable worker process (see pool.py). `judge` runs one check in the
current process without limits: use it only on trusted input.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Iterable

from curate.verify.math.pool import ANSWER_MODES, DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S, MathVerifier, Pair
from curate.verify.result import Verdict

__all__ = [
    "ANSWER_MODES",
    "DEFAULT_MEMORY_MB",
    "DEFAULT_TIMEOUT_S",
    "MathVerifier",
    "check_math",
    "judge",
    "verify_math_batch",
]

_shared: MathVerifier | None = None
_shared_lock = threading.Lock()


def judge(response: str | None, reference: str | None, answers: str = "auto") -> Verdict:
    """One check in this process, without time or memory limits (trusted input only)."""
    from curate.verify.math.check import check_outcome  # here: importing the package stays light (no sympy)

    start = time.perf_counter()
    status, extracted, detail = check_outcome(response, reference, answers=answers)
    return Verdict(status, extracted, detail, round(time.perf_counter() - start, 6))


def check_math(response: str | None, reference: str | None, timeout: float = DEFAULT_TIMEOUT_S) -> Verdict:
    """Verify one response against one reference in a shared, isolated worker (started on first use)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = MathVerifier(workers=1, timeout=timeout)
            atexit.register(_shared.close)
        _shared.timeout = float(timeout)
        return _shared.check(response, reference)


def verify_math_batch(
    pairs: Iterable[Pair],
    workers: int = 1,
    timeout: float = DEFAULT_TIMEOUT_S,
    memory_mb: int = DEFAULT_MEMORY_MB,
) -> list[Verdict]:
    """Verify many (response, reference) pairs with a pool of `workers` processes; verdicts in order."""
    with MathVerifier(workers=workers, timeout=timeout, memory_mb=memory_mb) as verifier:
        return list(verifier.map(pairs))
