"""Engines: where a stage's work runs. The stage classes (curate.stage.Stage) are the one contract;
an engine only decides where `prepare` and `process` run and hands the runner (curate.stage.run_stage)
one result table per input batch, in input order. The runner writes the workspace itself, on the
driver, the same way whatever the engine, so both engines give byte-identical workspaces.

    local   prepare in this process; process in this process or a local process pool (--workers)
    ray     every stage through Ray (curate.engine.ray, docs/ray.md); needs the `ray` extra

`make_engine("ray", ...)` imports Ray; the local engine never does.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

import pyarrow as pa

from curate.errors import CurateError, did_you_mean

if TYPE_CHECKING:
    from curate.stage import Stage, StageContext

ENGINES = ("local", "ray")


class Engine(Protocol):
    name: str

    def prepare(self, stage: Stage, ctx: StageContext) -> None:
        """Run the stage's global pass (`Stage.prepare`); afterwards `stage` holds its state."""

    def results(self, stage: Stage, ctx: StageContext) -> Iterator[pa.Table]:
        """`stage.process` over every input batch (`stage.read(ctx)`, as Arrow, curate.stage.to_arrow):
        one table per batch, with the batch's rows in their order."""

    def close(self) -> None:
        """Release what the engine started (a local Ray cluster)."""


def make_engine(
    name: str = "local", address: str | None = None, workers: int = 1, progress: bool = True
) -> Engine:
    """The engine called `name`; `address` is the Ray cluster to join (ray only; none: start one)."""
    if name == "local":
        if address is not None:
            raise CurateError("--ray-address needs --engine ray")
        from curate.engine.local import LocalEngine

        return LocalEngine(workers)
    if name == "ray":
        from curate.engine.ray import RayEngine

        return RayEngine(address, workers, progress)
    raise CurateError(f"--engine {name!r}: no such engine{did_you_mean(name, ENGINES)} (engines: local, ray)")


__all__ = ["ENGINES", "Engine", "make_engine"]
