"""Verification of teacher traces: math answers (sympy) and code (sandboxed tests).

Both verifiers return a `Verdict` whose status is one of STATUSES (design §4).
"""

from curate.verify.result import STATUSES, Verdict

__all__ = ["STATUSES", "Verdict"]
