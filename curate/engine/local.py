"""The local engine: a stage's global pass in this process, its batches in this process or, for a
`parallel` stage with enough rows, in a local process pool of `workers` (results in input order)."""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl
import pyarrow as pa

from curate.stage import Stage, StageContext, ordered_pool_map, to_arrow

PARALLEL_MIN_ROWS = 20_000  # below this a worker pool costs more to start than it saves

_worker_stage: Stage | None = None


def _init_worker(stage: Stage) -> None:
    global _worker_stage
    _worker_stage = stage


def _process_in_worker(table: pa.Table) -> pa.Table:
    assert _worker_stage is not None
    return to_arrow(_worker_stage.process(pl.from_arrow(table)))


class LocalEngine:
    name = "local"

    def __init__(self, workers: int = 1):
        self.workers = workers

    def prepare(self, stage: Stage, ctx: StageContext) -> None:
        stage.prepare(ctx)

    def results(self, stage: Stage, ctx: StageContext) -> Iterator[pa.Table]:
        batches = (to_arrow(b) for b in stage.read(ctx))
        workers = ctx.workers
        if (
            stage.parallel
            and workers > 1
            and ctx.previous is not None
            and ctx.input_rows() >= PARALLEL_MIN_ROWS
        ):
            return ordered_pool_map(_process_in_worker, batches, workers, _init_worker, (stage,))
        return (to_arrow(stage.process(pl.from_arrow(b))) for b in batches)

    def close(self) -> None:
        pass
