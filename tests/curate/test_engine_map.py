"""StageContext.map, the parallel primitive of a global pass, on each engine: fn(item, shared) for
every item, results in input order; `shared` reaches each local worker once, not once per item."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from curate.engine.local import LocalEngine
from curate.stage import Stage, StageContext
from curate.workspace import Workspace

LOADS = 0  # how many times this process unpickled a _Counted


class _Counted:
    """A `shared` value that counts, per process, how often it was unpickled."""

    def __init__(self, factor: int):
        self.factor = factor

    def __getstate__(self) -> dict:
        return {"factor": self.factor}

    def __setstate__(self, state: dict) -> None:
        global LOADS
        LOADS += 1
        self.factor = state["factor"]


def scale(item: pa.Table, shared: _Counted) -> tuple[pa.Table, int, int]:
    """The map's fn: a table of the item times the factor, this worker's pid and its unpickle count."""
    doubled = pa.table({"x": np.asarray(item["x"]) * shared.factor})
    return doubled, os.getpid(), LOADS


def fail_on_three(item: int, shared: None) -> int:
    if item == 3:
        raise ValueError("item 3 is bad")
    return item


def _ctx(tmp_path: Path, workers: int) -> StageContext:
    return StageContext(Workspace(tmp_path), 0, tmp_path, None, workers, progress=False)


class _Probe(Stage):
    name = "probe"

    def prepare(self, ctx: StageContext) -> None:
        items = (pa.table({"x": np.arange(i, i + 5)}) for i in range(0, 60, 5))
        self.results = list(ctx.map(scale, items, _Counted(3)))


def _prepared(engine, tmp_path: Path, workers: int) -> list[tuple[pa.Table, int, int]]:
    stage = _Probe()
    engine.prepare(stage, _ctx(tmp_path, workers))
    return stage.results


def _check(results: list[tuple[pa.Table, int, int]]) -> None:
    assert [r[0]["x"].to_pylist() for r in results] == [
        [3 * x for x in range(i, i + 5)] for i in range(0, 60, 5)
    ]


def test_map_without_an_engine_runs_in_this_process(tmp_path):
    results = list(_ctx(tmp_path, 4).map(scale, [pa.table({"x": [1, 2]})], _Counted(2)))
    assert results[0][0]["x"].to_pylist() == [2, 4] and results[0][1] == os.getpid()


def test_local_engine_maps_in_order_on_a_pool_with_shared_sent_once_per_worker(tmp_path):
    results = _prepared(LocalEngine(2), tmp_path, 2)
    _check(results)
    pids = {pid for _, pid, _ in results}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2  # worker processes did the work
    assert {loads for _, _, loads in results} == {1}  # each worker unpickled `shared` once
    serial = _prepared(LocalEngine(1), tmp_path, 1)  # one worker: in this process
    _check(serial)
    assert {pid for _, pid, _ in serial} == {os.getpid()}


class _Failing(Stage):
    name = "failing"

    def prepare(self, ctx: StageContext) -> None:
        list(ctx.map(fail_on_three, range(6)))


def test_local_engine_map_raises_the_error_of_an_item(tmp_path):
    with pytest.raises(ValueError, match="item 3"):
        LocalEngine(2).prepare(_Failing(), _ctx(tmp_path, 2))


@pytest.mark.slow
def test_ray_engine_maps_in_order_as_tasks(tmp_path):
    pytest.importorskip("ray")
    from curate.engine.ray import RayEngine

    engine = RayEngine(None, 2, progress=False)
    try:
        engine.measure = {}
        results = _prepared(engine, tmp_path, 2)
        _check(results)
        assert os.getpid() not in {pid for _, pid, _ in results}  # Ray workers did the work
        assert engine.measure["probe map"] > 0  # items, results and `shared` counted for the bench
        with pytest.raises(ValueError, match="item 3"):
            engine.prepare(_Failing(), _ctx(tmp_path, 2))
    finally:
        engine.close()
