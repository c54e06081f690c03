"""The local engine: a stage's global pass in this process, its batches in this process or, for a
`parallel` stage with enough rows, in a local process pool of `workers` (results in input order).
`StageContext.map` (the parallel parts of a global pass) runs in a local process pool of `workers`
too (PoolMapper), `shared` handed to each worker once per map. A batch that `read` yields already
decided (an Arrow table with `_reason`: ingest's) is written as it is, without a trip through
Polars and `process`."""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import multiprocessing
import pickle
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from curate.stage import REASON, Stage, StageContext, ordered_pool_map, to_arrow

PARALLEL_MIN_ROWS = 20_000  # below this a worker pool costs more to start than it saves

_worker_stage: Stage | None = None
_worker_shared: tuple[int, Any] = (-1, None)  # a map worker's `shared`: (its map's number, value)


def _init_worker(stage: Stage) -> None:
    global _worker_stage
    _worker_stage = stage


def _process_in_worker(table: pa.Table) -> pa.Table:
    assert _worker_stage is not None
    return to_arrow(_worker_stage.process(pl.from_arrow(table)))


def _map_in_worker(fn: Callable[[Any, Any], Any], item: Any, number: int, shared_file: str) -> Any:
    """One item of map `number`; its `shared` is read from `shared_file` once per worker and map."""
    global _worker_shared
    if _worker_shared[0] != number:
        _worker_shared = (number, pickle.loads(Path(shared_file).read_bytes()))
    return fn(item, _worker_shared[1])


class PoolMapper:
    """StageContext.map on `workers` local processes, results in input order, a window in flight.
    One pool serves every map of a stage's prepare (started at the first map with two items or
    more: a pool costs more to start than one item takes); `shared` is pickled once per map into
    a file that each worker reads once."""

    def __init__(self, workers: int):
        self.workers = workers
        self.pool: cf.ProcessPoolExecutor | None = None
        self.scratch: tempfile.TemporaryDirectory | None = None
        self.maps = 0

    def __call__(self, fn: Callable[[Any, Any], Any], items: Iterable[Any], shared: Any) -> Iterator[Any]:
        items = iter(items)
        head = list(itertools.islice(items, 2))
        if self.workers <= 1 or len(head) < 2:
            yield from (fn(item, shared) for item in itertools.chain(head, items))
            return
        if self.pool is None:
            self.pool = cf.ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
            self.scratch = tempfile.TemporaryDirectory(prefix="distillery-map-")
        assert self.scratch is not None
        self.maps += 1
        shared_file = Path(self.scratch.name) / f"shared-{self.maps}.pickle"
        shared_file.write_bytes(pickle.dumps(shared, protocol=pickle.HIGHEST_PROTOCOL))
        pending: deque[cf.Future] = deque()
        try:
            for item in itertools.chain(head, items):
                pending.append(self.pool.submit(_map_in_worker, fn, item, self.maps, str(shared_file)))
                if len(pending) >= 2 * self.workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
            shared_file.unlink(missing_ok=True)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None
        if self.scratch is not None:
            self.scratch.cleanup()
            self.scratch = None


class LocalEngine:
    name = "local"

    def __init__(self, workers: int = 1):
        self.workers = workers

    def prepare(self, stage: Stage, ctx: StageContext) -> None:
        mapper = PoolMapper(ctx.workers)
        ctx.mapper = mapper
        try:
            stage.prepare(ctx)
        finally:
            mapper.close()
            ctx.mapper = None

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
        return (b if REASON in b.column_names else to_arrow(stage.process(pl.from_arrow(b))) for b in batches)

    def close(self) -> None:
        pass
