"""Code verification: extract the code from a response and run its tests in a sandbox.

    from curate.verify.code import CodeVerifier, from_humaneval

    spec = from_humaneval(record)                       # dataset record -> test spec (DESIGN section 4)
    with CodeVerifier(workers=2) as verifier:           # pre-started sandboxed workers
        verdict = verifier.check(spec, response=text)   # -> Verdict(status, extracted, detail, seconds)
        verdicts = list(verifier.map(items))            # many {"tests", "code"|"response"}, in order

Isolation is bubblewrap when it works here, else util-linux unshare; without either the verifier
refuses to start unless isolation="none" is asked for explicitly. See sandbox.py and inside/.

Names are imported on first use, so that `distillery --help` does not load the sandbox machinery.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "extract_code": "extract",
    "IsolationError": "sandbox",
    "CONVERTERS": "specs",
    "LEETCODE_PRELUDE": "specs",
    "SpecError": "specs",
    "from_apps": "specs",
    "from_codeforces": "specs",
    "from_humaneval": "specs",
    "from_leetcode": "specs",
    "from_mbpp": "specs",
    "parse_spec": "specs",
    "CodeVerifier": "verifier",
    "check_code": "verifier",
    "verify_code_batch": "verifier",
    "DEFAULT_MAX_PROCESSES": "limits",
    "DEFAULT_MEMORY_MB": "limits",
    "DEFAULT_TIME_LIMIT_S": "limits",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
