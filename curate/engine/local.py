"""The local engine: a stage's global pass in this process, its batches in this process or, for a
`parallel` stage with enough rows, in a local process pool of `workers` (results in input order).
`StageContext.map` (the parallel parts of a global pass) runs in a local process pool of `workers`
too, `shared` handed to each worker once as it starts."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import polars as pl
import pyarrow as pa

from curate.stage import Stage, StageContext, ordered_pool_map, to_arrow

PARALLEL_MIN_ROWS = 20_000  # below this a worker pool costs more to start than it saves

_worker_stage: Stage | None = None
_worker_map: tuple[Callable[[Any, Any], Any], Any] | None = None  # fn and shared of a map's worker


def _init_worker(stage: Stage) -> None:
    global _worker_stage
    _worker_stage = stage


def _process_in_worker(table: pa.Table) -> pa.Table:
    assert _worker_stage is not None
    return to_arrow(_worker_stage.process(pl.from_arrow(table)))


def _init_map_worker(fn: Callable[[Any, Any], Any], shared: Any) -> None:
    global _worker_map
    _worker_map = (fn, shared)


def _map_in_worker(item: Any) -> Any:
    assert _worker_map is not None
    fn, shared = _worker_map
    return fn(item, shared)


def pool_map(fn: Callable[[Any, Any], Any], items: Iterable[Any], shared: Any, workers: int) -> Iterator[Any]:
    """StageContext.map on `workers` local processes, results in input order; with one item (or
    one worker) in this process, since a pool costs more to start than one item takes."""
    items = iter(items)
    head = list(itertools.islice(items, 2))
    if workers <= 1 or len(head) < 2:
        yield from (fn(item, shared) for item in itertools.chain(head, items))
        return
    yield from ordered_pool_map(
        _map_in_worker, itertools.chain(head, items), workers, _init_map_worker, (fn, shared)
    )


class LocalEngine:
    name = "local"

    def __init__(self, workers: int = 1):
        self.workers = workers

    def prepare(self, stage: Stage, ctx: StageContext) -> None:
        ctx.mapper = functools.partial(pool_map, workers=ctx.workers)
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
