"""The method interface: one output tensor at a time, in row chunks.

A method sees a `TensorJob` (the inputs of one tensor name across all models, plus resolved
parameters). `prepare` computes whatever needs the whole tensor (norms, thresholds, masks'
rescaling); `combine` then produces the merged values for one slice of rows. Chunking along the
first dimension keeps the float32 working set small however large the tensor is, and every
last-dimension row stays in one chunk, so row-wise statistics (arcee_fusion's KL) need no care.
Chunk boundaries depend only on the tensor's shape, so in-memory and streamed merges agree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from ..errors import MergeError

# Elements per chunk: 4M float32 values = 16 MB per working tensor.
CHUNK_ELEMENTS = 1 << 22


@dataclass
class TensorJob:
    """Everything a method needs to merge one tensor name."""

    name: str
    tensors: list[torch.Tensor]
    base: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    model_params: list[dict[str, Any]] = field(default_factory=list)
    seed: int = 0

    @property
    def shape(self) -> torch.Size:
        return self.tensors[0].shape

    @property
    def numel(self) -> int:
        return self.tensors[0].numel()

    @property
    def compute_dtype(self) -> torch.dtype:
        """float32, or float64 when any input is float64."""
        return torch.float64 if any(t.dtype == torch.float64 for t in self.tensors) else torch.float32

    @property
    def others(self) -> list[int]:
        """Indices of the inputs that are not the base."""
        return [i for i in range(len(self.tensors)) if i != self.base]

    def chunks(self) -> list[slice]:
        """Row slices covering the tensor; one chunk for tensors of fewer than two dimensions."""
        rows = self.shape[0] if self.tensors[0].dim() >= 1 else 1
        if self.tensors[0].dim() < 2:
            return [slice(0, rows)]
        step = max(1, CHUNK_ELEMENTS // max(1, self.numel // rows))
        return [slice(start, min(rows, start + step)) for start in range(0, rows, step)]

    def raw(self, index: int, rows: slice) -> torch.Tensor:
        """Rows of input `index` as stored (a view of the input: never modify it).

        Mixed with a compute-dtype tensor in an elementwise op, they are promoted to the compute
        dtype inside the op, which saves converting them first.
        """
        tensor = self.tensors[index]
        return tensor if tensor.dim() == 0 else tensor[rows]

    def rows(self, index: int, rows: slice) -> torch.Tensor:
        """Rows of input `index`, in the compute dtype (may share memory with the input: never modify it)."""
        return self.raw(index, rows).to(self.compute_dtype)

    def delta(self, index: int, rows: slice) -> torch.Tensor:
        """Rows of input `index` minus the base's (a new tensor)."""
        return torch.sub(self.raw(index, rows), self.rows(self.base, rows))

    def generator(self, *salt: Any) -> torch.Generator:
        """A random generator that depends only on the seed, the tensor name and `salt`."""
        digest = hashlib.blake2b(repr((self.seed, self.name, *salt)).encode(), digest_size=8).digest()
        return torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)


class Method:
    """A merge method. Subclasses set the class attributes and implement `combine`."""

    name: ClassVar[str]
    needs_base: ClassVar[bool] = False
    # Whether a base_model, when the config gives one, is an input (its index is job.base).
    optional_base: ClassVar[bool] = False
    min_inputs: ClassVar[int] = 1
    max_inputs: ClassVar[int | None] = None
    # Parameter name -> default; the default's type (bool, int, float) is the parameter's type.
    shared_params: ClassVar[dict[str, Any]] = {}
    model_params: ClassVar[dict[str, Any]] = {}
    # Whether model_params apply to the base too (linear) or only to the other models.
    base_gets_model_params: ClassVar[bool] = False

    def prepare(self, job: TensorJob) -> Any:
        """Whole-tensor statistics that `combine` needs; nothing by default."""
        return None

    def combine(self, job: TensorJob, rows: slice, state: Any) -> torch.Tensor:
        """The merged values of `rows`, in the job's compute dtype."""
        raise NotImplementedError

    def check_parameters(self, params: dict[str, Any], model_params: list[dict[str, Any]]) -> str | None:
        """Why one tensor's resolved parameters do not suit this method, or None (checked when planning)."""
        return None

    def check_inputs(self, count: int, has_base: bool) -> str | None:
        """Why `count` inputs (with or without a base) do not suit this method, or None."""
        if self.needs_base and not has_base:
            return f"{self.name} needs base_model"
        if count < self.min_inputs:
            return f"{self.name} needs at least {self.min_inputs} models (base included), got {count}"
        if self.max_inputs is not None and count > self.max_inputs:
            exact = "exactly" if self.max_inputs == self.min_inputs else "at most"
            return f"{self.name} takes {exact} {self.max_inputs} models (base included), got {count}"
        return None


def run_job(method: Method, job: TensorJob) -> Iterator[tuple[slice, torch.Tensor]]:
    """Merge one tensor, yielding (rows, merged rows) chunk by chunk."""
    reference = job.tensors[job.base if job.base is not None else 0]
    if not reference.is_floating_point():
        # Integer buffers (position ids and the like) are not weights: keep the base's.
        yield slice(0, reference.shape[0] if reference.dim() else 1), reference
        return
    shapes = {tuple(t.shape) for t in job.tensors}
    if len(shapes) != 1:
        raise MergeError(f"tensor {job.name}: inputs have different shapes {sorted(shapes)}")
    state = method.prepare(job)
    for rows in job.chunks():
        yield rows, method.combine(job, rows, state)
