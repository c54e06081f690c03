"""The Ray engine: every stage through a Ray cluster, with the output of the local engine, byte for byte.

Where each part of a stage runs (docs/ray.md has the plan for N nodes and the bytes per row):

    prepare     a global stage's pass over all its rows (dedup's clusters, decontamination's hits,
                select's and shard's choices, quality's and domain's statistics) runs on the driver,
                its parallel parts through StageContext.map: Ray tasks (retried when their worker
                dies), `shared` put in the object store once, a window of tasks in flight, results
                in input order. The prepared stage is then broadcast once (ray.put) to the batch
                tasks. Tasks read the input parts through the shared workspace path.
    process     over the previous stage's parts: Ray Data `read_parquet` + `map_batches` over Arrow
                batches of the stage's `batch_rows` (tasks, retried), in input order
                (`preserve_order`; every stage keeps its rows in row_id order), re-cut on the
                driver into the local engine's batches.
    own reader  a stage that overrides `read` (ingest: its records are read where the inputs are,
                the driver): batches read on the driver go through Ray tasks, a window in flight.
    verify      a Ray Data actor pool: each actor holds a copy of the stage, prepared on its node,
                and with it the verifiers' pools (killable math workers, the code sandbox with the
                node's isolation, checked there: a node without isolation refuses untrusted code
                unless `code_isolation: none` / --unsafe-no-isolation). Actors are restarted when
                they die and their batch is retried. They return verdicts only; the driver's
                `process` (with those verdicts) writes the side tables as locally.

The driver writes every file of the workspace (curate.stage.run_stage), so the manifest, stage
folders, atomic commits, `rejected` and the ledger are those of a local run. Ray is imported here
only, and only when `--engine ray` is asked for.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from curate.errors import CurateError
from curate.schema import SIDE_TABLE_SCHEMAS
from curate.stage import Stage, StageContext, to_arrow

WINDOW = 8  # ingest batches in flight
VERIFY_BATCH_ROWS = 64  # rows per actor call: small enough to spread a few thousand rows over the nodes
RETRIES = 3  # task retries after a worker or node dies (Ray's own failure handling)
MAP_WINDOW_PER_CPU = 2  # StageContext.map tasks in flight per CPU of the cluster
# Fault injection for tests (tests/ray): a folder. While its file `hold` names the module of a map
# task's function, such a task writes `<pid>.running` (holding the function's name) there and waits
# until `hold` names something else or is removed, so that a test kills a worker provably inside a
# stage's task.
TASK_GATE = "DISTILLERY_RAY_TASK_GATE"
# What an actor returns per row: the verify side table without `id` (the driver adds it).
VERDICT_SCHEMA = SIDE_TABLE_SCHEMAS["verify"].remove(SIDE_TABLE_SCHEMAS["verify"].get_field_index("id"))


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401  (the `ray[data]` part of the extra)
    except ImportError as error:
        raise CurateError("--engine ray needs Ray: pip install 'distillery[ray]'") from error
    return ray


def _own_reader(stage: Stage) -> bool:
    """Whether the stage reads its own input (ingest) rather than the previous stage's parts."""
    return type(stage).read is not Stage.read


def _verdict_stage(stage: Stage) -> bool:
    """Verify: its costly, pure part is `verdicts(batch)`; `process` adds side-table writes to it."""
    return callable(getattr(type(stage), "verdicts", None))


class RayEngine:
    name = "ray"

    def __init__(self, address: str | None = None, workers: int = 1, progress: bool = True):
        ray = _ray()
        self.ray = ray
        self.workers = workers
        self.connected_here = not ray.is_initialized()
        if self.connected_here:
            # No address (and no RAY_ADDRESS): a new cluster on this machine for the run ("local"),
            # never a stale one that /tmp/ray/ray_current_cluster still names.
            address = address or os.environ.get("RAY_ADDRESS") or "local"
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=progress)
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # its per-dataset INFO and notes
        data = ray.data.DataContext.get_current()
        data.execution_options.preserve_order = True
        data.enable_progress_bars = False  # the runner's bar counts the rows as they come back
        # Ray Data's v2 Parquet reader lists files with actors that are not restarted: a node lost
        # while a stage's parts are listed would fail the stage. The v1 reader's tasks are retried.
        data.use_datasource_v2 = False
        self._replicas: dict[int, Stage] = {}
        self._map_task = ray.remote(max_retries=RETRIES)(_map_task)
        self._stage_name = ""
        # a dict (bench/ray_bench.py): bytes of each stage broadcast, and "<stage> map": the bytes its
        # StageContext.map moved (items, results, shared once)
        self.measure: dict[str, int] | None = None

    # -- prepare ----------------------------------------------------------------------------------
    def prepare(self, stage: Stage, ctx: StageContext) -> None:
        if _verdict_stage(stage):
            self._replicas[id(stage)] = copy.deepcopy(stage)  # the actors prepare their own copy
        self._stage_name = stage.name
        ctx.mapper = self.map
        stage.prepare(ctx)

    def map(self, fn: Callable[[Any, Any], Any], items: Iterable[Any], shared: Any = None) -> Iterator[Any]:
        """StageContext.map as Ray tasks: `shared` put once, a window of tasks in flight, each retried
        when its worker or node dies; results in input order."""
        ray = self.ray
        window = max(2, MAP_WINDOW_PER_CPU * int(ray.cluster_resources().get("CPU", 1)))
        shared_ref = ray.put(shared)
        gate = os.environ.get(TASK_GATE)
        moved = self._count(shared)
        pending: deque = deque()
        try:
            for item in items:
                moved += self._count(item)
                pending.append(self._map_task.remote(fn, item, shared_ref, gate))
                if len(pending) >= window:
                    result = ray.get(pending.popleft())
                    moved += self._count(result)
                    yield result
            while pending:
                result = ray.get(pending.popleft())
                moved += self._count(result)
                yield result
        finally:
            if self.measure is not None:
                key = f"{self._stage_name} map"
                self.measure[key] = self.measure.get(key, 0) + moved

    def _count(self, value: Any) -> int:
        return len(self.ray.cloudpickle.dumps(value)) if self.measure is not None else 0

    # -- batches ----------------------------------------------------------------------------------
    def results(self, stage: Stage, ctx: StageContext) -> Iterator[pa.Table]:
        if _own_reader(stage) or ctx.previous is None:
            return self._driver_batches(stage, ctx)
        parts = ctx.input_parts()
        if not parts:
            return iter(())
        sizes = ctx.input_batch_sizes(stage.batch_rows)
        dataset = self.ray.data.read_parquet([str(p) for p in parts])
        if _verdict_stage(stage):
            return self._verify(stage, ctx, dataset, sizes)
        self._measure(stage, stage)
        processed = dataset.map_batches(
            _process_table,
            fn_args=(stage,),  # Ray Data ships it once, with the map (an object in the store)
            batch_format="pyarrow",
            batch_size=stage.batch_rows,
        )  # batch tasks keep Ray's default of 3 retries after a system failure
        return _recut(processed.iter_batches(batch_format="pyarrow", batch_size=None), sizes)

    def _driver_batches(self, stage: Stage, ctx: StageContext) -> Iterator[pa.Table]:
        task = self.ray.remote(max_retries=RETRIES)(_process_table)
        if ctx.previous is not None:
            self._measure(stage, stage)
        stage_ref = self.ray.put(stage)
        pending: deque = deque()
        for batch in stage.read(ctx):
            pending.append(task.remote(to_arrow(batch), stage_ref))
            if len(pending) >= WINDOW:
                yield self.ray.get(pending.popleft())
        while pending:
            yield self.ray.get(pending.popleft())

    def _verify(self, stage: Stage, ctx: StageContext, dataset: Any, sizes: list[int]) -> Iterator[pa.Table]:
        replica = self._replicas.pop(id(stage))
        self._measure(stage, replica)
        nodes = max(1, sum(1 for n in self.ray.nodes() if n.get("Alive")))
        verdicts = dataset.map_batches(
            _VerdictActor,
            fn_constructor_args=(replica, int(replica.options.get("workers") or ctx.workers or 1)),
            batch_format="pyarrow",
            batch_size=VERIFY_BATCH_ROWS,
            compute=self.ray.data.ActorPoolStrategy(min_size=1, max_size=nodes),
            num_cpus=1,
        )
        pending = _Replay()
        stage.verdicts = pending.next  # this instance's process() takes the actors' verdicts
        try:
            stream = _recut(verdicts.iter_batches(batch_format="pyarrow", batch_size=None), sizes)
            for batch, answer in zip(ctx.input_batches(stage.batch_rows), stream, strict=True):
                pending.put(answer)
                yield to_arrow(stage.process(batch))
        finally:
            del stage.verdicts

    def _measure(self, stage: Stage, shipped: Stage) -> None:
        if self.measure is not None:
            self.measure[stage.name] = len(self.ray.cloudpickle.dumps(shipped))

    def close(self) -> None:
        if self.connected_here and self.ray.is_initialized():
            self.ray.shutdown()


def _map_task(fn: Callable[[Any, Any], Any], item: Any, shared: Any, gate: str | None) -> Any:
    if gate:
        _hold(Path(gate), fn)
    return fn(item, shared)


def _hold(gate: Path, fn: Callable) -> None:
    """The test gate (TASK_GATE): wait inside the task while `gate/hold` names fn (its module and
    name, `curate.dedup.tasks.key_rows`) or its module."""
    name = f"{fn.__module__}.{fn.__qualname__}"

    def held() -> bool:
        try:
            return (gate / "hold").read_text().strip() in (name, fn.__module__)
        except FileNotFoundError:
            return False

    if held():
        (gate / f"{os.getpid()}.running").write_text(name)
        while held():
            time.sleep(0.05)


def _process_table(table: pa.Table, stage: Stage) -> pa.Table:
    return to_arrow(stage.process(pl.from_arrow(table)))


class _VerdictActor:
    """A verify actor: a prepared copy of the stage (its verifiers' worker pools live here)."""

    def __init__(self, stage: Stage, workers: int):
        from curate.workspace import Workspace

        self.scratch = Path(tempfile.mkdtemp(prefix="distillery-verify-"))
        self.stage = stage
        # The copy's own side files go to a scratch folder and are thrown away: the driver writes them.
        self.ctx = StageContext(Workspace(self.scratch), 0, self.scratch, None, workers, progress=False)
        stage.prepare(self.ctx)

    def __call__(self, table: pa.Table) -> pa.Table:
        kinds, verdicts = self.stage.verdicts(pl.from_arrow(table))
        return pa.table(
            {
                "row_id": table["row_id"].combine_chunks().cast(pa.int64()),
                "kind": pa.array(kinds, pa.string()),
                "status": pa.array([v.status for v in verdicts], pa.string()),
                "extracted": pa.array([v.extracted for v in verdicts], pa.string()),
                "detail": pa.array([v.detail for v in verdicts], pa.string()),
                "seconds": pa.array([v.seconds for v in verdicts], pa.float64()),
            },
            schema=VERDICT_SCHEMA,
        )

    def __del__(self) -> None:
        try:
            self.stage.finish(self.ctx)  # closes the verifiers' pools
        finally:
            shutil.rmtree(self.scratch, ignore_errors=True)


class _Replay:
    """Verdicts computed on the cluster, handed to Verify.process batch by batch."""

    def __init__(self) -> None:
        self.table: pa.Table | None = None

    def put(self, table: pa.Table) -> None:
        self.table = table

    def next(self, batch: pl.DataFrame) -> tuple[list[str | None], list]:
        from curate.verify.result import Verdict

        table, self.table = self.table, None
        if table is None or table["row_id"].to_pylist() != batch["row_id"].to_list():
            raise CurateError("ray engine: the cluster's verdicts do not line up with the batch")
        rows = table.to_pylist()
        return [r["kind"] for r in rows], [
            Verdict(r["status"], r["extracted"], r["detail"], r["seconds"]) for r in rows
        ]


def _recut(stream: Iterable[pa.Table], sizes: list[int]) -> Iterator[pa.Table]:
    """Tables of `sizes` rows from a stream of tables in row order (the Parquet writer makes one row
    group per table written, so the local engine's batch boundaries are part of the bytes)."""
    wanted = deque(sizes)
    buffer: deque[pa.Table] = deque()
    have = 0
    for table in stream:
        if table.num_rows:
            buffer.append(table)
            have += table.num_rows
        while wanted and have >= wanted[0]:
            size = wanted.popleft()
            have -= size
            yield _take(buffer, size)
    if wanted or have:
        raise CurateError(f"ray engine: the cluster returned {have - sum(wanted):+d} rows against the input")


def _take(buffer: deque[pa.Table], size: int) -> pa.Table:
    pieces = []
    while size:
        head = buffer[0]
        if head.num_rows <= size:
            pieces.append(buffer.popleft())
            size -= head.num_rows
        else:
            pieces.append(head.slice(0, size))
            buffer[0] = head.slice(size)
            size = 0
    first = pieces[0].schema
    same = [p if p.schema == first else p.select(first.names).cast(first) for p in pieces]
    return pa.concat_tables(same).combine_chunks()


__all__ = ["RayEngine"]
