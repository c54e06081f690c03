"""The Python API: merge config files to disk, or state dicts and tensors in memory."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from .card import write_merge_card
from .config import ModelSpec, StepSpec
from .errors import MergeError
from .plan import ModelInfo, StepPlan, StepResult, execute, plan_config, plan_step, run_plan
from .tensors import DEFAULT_SHARD_BYTES, MemoryWriter


def run_config(
    path: str | Path,
    out: str | Path,
    *,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    steps_dir: str | Path | None = None,
    seed: int | None = None,
    progress: bool = False,
) -> list[StepResult]:
    """Check, then run, every step of a merge config; the last step's model is written to `out`."""
    plans = plan_config(path, out, steps_dir=steps_dir, seed=seed)
    return [run_step(plan, shard_bytes, progress) for plan in plans]


def run_step(plan: StepPlan, shard_bytes: int = DEFAULT_SHARD_BYTES, progress: bool = False) -> StepResult:
    """Run one planned step into its folder and write its model card (README.md) there: every merge
    written to disk (`distillery merge`, a recipe's merge step, this API) goes through here."""
    result = run_plan(plan, shard_bytes, progress)
    write_merge_card(plan, result)
    return result


def check_config(path: str | Path, out: str | Path, *, steps_dir: str | Path | None = None) -> list[StepPlan]:
    """Run every check of a config without merging anything (raises MergeError on a problem)."""
    return plan_config(path, out, steps_dir=steps_dir)


def merge_state_dicts(
    method: str,
    models: Sequence[Mapping[str, torch.Tensor]],
    *,
    base: int | Mapping[str, torch.Tensor] | None = None,
    parameters: Mapping[str, Any] | None = None,
    model_parameters: Sequence[Mapping[str, Any]] | None = None,
    seed: int = 0,
    dtype: str | None = None,
    out_dtype: str | None = None,
) -> dict[str, torch.Tensor]:
    """Merge in-memory state dicts with the same checks, parameters and methods as a config.

    `base` is an index into `models` or a separate state dict; `parameters` are the global
    settings (t, lambda, normalize, ...), `model_parameters` one mapping per model (weight, density).
    Values may be gradients or filtered lists, resolved per tensor name as in a config.
    """
    if model_parameters is not None and len(model_parameters) != len(models):
        raise MergeError(f"model_parameters has {len(model_parameters)} entries for {len(models)} models")
    infos = {f"model_{i}": ModelInfo.from_state_dict(f"model_{i}", sd) for i, sd in enumerate(models)}
    specs = [ModelSpec(ref, (model_parameters or [{}] * len(models))[i]) for i, ref in enumerate(infos)]
    base_ref = None
    if isinstance(base, int):
        base_ref = specs[base].ref
    elif base is not None:
        base_ref = "base"
        infos[base_ref] = ModelInfo.from_state_dict(base_ref, base)
    step = StepSpec(
        name="merge",
        method=method,
        models=specs,
        base_model=base_ref,
        parameters=[parameters or {}],
        dtype=dtype,
        out_dtype=out_dtype,
        seed=seed,
        where=f"merge_state_dicts({method!r})",
    )
    plan = plan_step(step, infos.__getitem__, None)
    writer = MemoryWriter([(t.name, t.shape, t.dtype) for t in plan.tensors])
    execute(plan, writer)
    return writer.tensors


def merge_tensors(
    method: str,
    tensors: Sequence[torch.Tensor],
    *,
    base: int | None = None,
    parameters: Mapping[str, Any] | None = None,
    model_parameters: Sequence[Mapping[str, Any]] | None = None,
    name: str = "weight",
    seed: int = 0,
) -> torch.Tensor:
    """Merge single tensors (base = the index of the base among them); handy for checking formulas."""
    merged = merge_state_dicts(
        method,
        [{name: tensor} for tensor in tensors],
        base=base,
        parameters=parameters,
        model_parameters=model_parameters,
        seed=seed,
    )
    return merged[name]
