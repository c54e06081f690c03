"""Shared sandboxed verifiers for the code-verification tests (starting one takes ~0.5 s).

`verifier` uses the best isolation available here (bubblewrap in CI); `sandbox_verifier(mode)`
gives one per sandbox mode, so containment tests run under bwrap and under unshare alike.
Limits are small (1 s for the containment pools, 256 MB) so that the containment families stay fast.
"""

from __future__ import annotations

import pytest

from curate.verify.code import CodeVerifier


@pytest.fixture(scope="session")
def verifier():
    with CodeVerifier(workers=2, time_limit_s=4, memory_mb=256) as pool:
        yield pool


@pytest.fixture(scope="session")
def sandbox_verifier():
    pools: dict[str, CodeVerifier] = {}

    def get(mode: str) -> CodeVerifier:
        if mode not in pools:
            pools[mode] = CodeVerifier(workers=1, isolation=mode, time_limit_s=1, memory_mb=256)
        return pools[mode]

    yield get
    for pool in pools.values():
        pool.close()
