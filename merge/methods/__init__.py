"""Merge methods, one module each, looked up by their mergekit name."""

from __future__ import annotations

import difflib

from ..errors import MergeError
from .arcee_fusion import ArceeFusion
from .base import Method, TensorJob, run_job
from .breadcrumbs import Breadcrumbs
from .breadcrumbs_ties import BreadcrumbsTies
from .dare_linear import DareLinear
from .dare_ties import DareTies
from .della import Della
from .della_linear import DellaLinear
from .karcher import Karcher
from .linear import Linear
from .model_stock import ModelStock
from .multislerp import Multislerp
from .nearswap import Nearswap
from .nuslerp import Nuslerp
from .passthrough import Passthrough
from .sce import Sce
from .slerp import Slerp
from .task_arithmetic import TaskArithmetic
from .ties import Ties

METHODS: dict[str, type[Method]] = {
    method.name: method
    for method in (
        Linear,
        TaskArithmetic,
        Ties,
        DareTies,
        DareLinear,
        Breadcrumbs,
        BreadcrumbsTies,
        Della,
        DellaLinear,
        Sce,
        Slerp,
        Nuslerp,
        Multislerp,
        Karcher,
        ModelStock,
        Nearswap,
        ArceeFusion,
        Passthrough,
    )
}


def get_method(name: str) -> Method:
    """An instance of the method registered under `name`."""
    try:
        return METHODS[name]()
    except KeyError:
        close = difflib.get_close_matches(str(name).lower(), METHODS, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise MergeError(
            f"unknown merge_method {name!r}; {hint}available: {', '.join(sorted(METHODS))}"
        ) from None


__all__ = ["METHODS", "Method", "TensorJob", "get_method", "run_job"]
