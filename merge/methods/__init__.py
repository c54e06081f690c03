"""Merge methods, one module each, looked up by their mergekit name."""

from __future__ import annotations

from ..errors import MergeError
from .arcee_fusion import ArceeFusion
from .base import Method, TensorJob, run_job
from .dare_linear import DareLinear
from .dare_ties import DareTies
from .linear import Linear
from .model_stock import ModelStock
from .slerp import Slerp
from .task_arithmetic import TaskArithmetic
from .ties import Ties

METHODS: dict[str, type[Method]] = {
    method.name: method
    for method in (Linear, TaskArithmetic, Ties, DareTies, DareLinear, Slerp, ModelStock, ArceeFusion)
}


def get_method(name: str) -> Method:
    """An instance of the method registered under `name`."""
    try:
        return METHODS[name]()
    except KeyError:
        raise MergeError(f"unknown merge_method {name!r}; available: {', '.join(sorted(METHODS))}") from None


__all__ = ["METHODS", "Method", "TensorJob", "get_method", "run_job"]
