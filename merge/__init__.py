"""Model merging over safetensors: mergekit-style configs, streamed one tensor at a time.

This package imports nothing else of distillery. `import merge` stays cheap (the CLI imports it to
register its command), so the torch-backed API below is loaded on first use.
"""

from __future__ import annotations

from typing import Any

from .errors import MergeError

_API = {"run_config", "check_config", "merge_state_dicts", "merge_tensors"}

__all__ = ["MergeError", *sorted(_API), "METHODS"]


def __getattr__(name: str) -> Any:
    if name in _API:
        from . import api

        return getattr(api, name)
    if name == "METHODS":
        from .methods import METHODS

        return METHODS
    raise AttributeError(f"module 'merge' has no attribute {name!r}")
