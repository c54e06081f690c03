"""passthrough: copy one model's tensors, optionally scaled; the method of layer stacking.

    merged = scale * x          (scale defaults to 1: an exact copy)

Exactly one model per tensor. With `slices:` the output is assembled from layer ranges of one
or more models ("frankenmerges": stacking, cutting or repeating layers; see config.py).
Parameters: per model `scale` (1.0), usually a filter such as {filter: o_proj, value: 0.5}.
"""

from __future__ import annotations

from typing import Any

import torch

from .base import Method, TensorJob


class Passthrough(Method):
    name = "passthrough"
    max_inputs = 1
    model_params = {"scale": 1.0}
    base_gets_model_params = True

    def combine(self, job: TensorJob, rows: slice, state: Any) -> torch.Tensor:
        scale = job.model_params[0]["scale"]
        values = job.rows(0, rows)
        return values * scale if scale != 1.0 else values  # the writer only reads it
