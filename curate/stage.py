"""The stage interface and the local runner.

A stage has one job: given a batch of rows (a Polars DataFrame), return the same rows with its own
columns added and two decision columns, `_reason` (null = keep) and `_detail`. The runner splits
the result into the stage's kept rows and its rejected rows, so no stage ever writes files or
forgets a row. Global stages (dedup, decontamination) look at all rows first in `prepare`, then
decide per batch from what they learned; per-row stages only implement `process`.

    class DropEmpty(Stage):
        name = "drop_empty"
        def process(self, batch):
            return decide(batch, pl.col("response").is_null(), "empty_response", pl.lit("no response"))

Because `process` is a pure function of the batch (and of the state `prepare` built), the same
code runs in one process, in a local process pool (`--workers`) or on a Ray cluster
(`--engine ray`, curate.engine) with the same output; a stage holds no engine code.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import multiprocessing
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from curate.catalog import rejected_table
from curate.codehash import code_hash
from curate.errors import CurateError, EmptyResult, did_you_mean
from curate.losses import empty_message, loss_warnings
from curate.rows import plain_strings
from curate.workspace import STAGE_INFO, StageDir, Workspace, stage_label

if TYPE_CHECKING:
    from curate.engine import Engine

REASON, DETAIL = "_reason", "_detail"
T, R = TypeVar("T"), TypeVar("R")
# An engine's way to run StageContext.map: (fn, items, shared) -> results in input order.
Mapper = Callable[[Callable[[Any, Any], Any], Iterable[Any], Any], Iterator[Any]]
ROWS_PER_PART = 250_000
BATCH_ROWS = 1024


class Stage:
    """One pipeline stage. Subclasses set `name`, optionally `defaults` (their options) and
    `version` (bump when the output for the same input changes), and implement `process`.

    Options are checked here, once for every stage (`check_options`): an unknown key, a value of
    the wrong type (the type of its default, or `types[key]` where the default is None), a value
    outside `choices[key]`, or a key listed in `removed` (with why) is a CurateError that names
    the stage and the option. Stages check only what is particular to them (ranges, paths)."""

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    defaults: ClassVar[dict[str, Any]] = {}
    types: ClassVar[dict[str, type | tuple[type, ...]]] = {}  # where the default is None or too narrow
    choices: ClassVar[dict[str, tuple[Any, ...]]] = {}
    removed: ClassVar[dict[str, str]] = {}  # option -> why it is gone and what to use instead
    parallel: ClassVar[bool] = True  # process() may run in worker processes
    batch_rows: ClassVar[int] = BATCH_ROWS  # rows per input batch of process() (read's default)
    enabled_by_default: ClassVar[bool] = True  # opt-in stages set False; config `enabled:` overrides
    side_tables: ClassVar[tuple[str, ...]] = ()  # SQL side tables this stage writes (curate.schema)
    # Where nothing is committed at the stage's index (so nothing to reuse), its fingerprint is
    # taken when it has run, not before: ingest's hashes every input's bytes, which it does while
    # it reads them (run_stages).
    late_fingerprint: ClassVar[bool] = False

    def __init__(self, **options: Any):
        self.options = check_options(type(self), options)

    def fingerprint(self) -> dict[str, Any]:
        """Everything besides the input rows that the stage's output depends on."""
        return {"version": self.version, "options": self.options}

    def prepare(self, ctx: StageContext) -> None:
        """Global pass over the input before any batch is processed (dedup builds its clusters here)."""

    def read(self, ctx: StageContext) -> Iterator[pl.DataFrame]:
        """The input batches; by default the previous stage's rows, `batch_rows` at a time."""
        yield from ctx.input_batches(self.batch_rows)

    def process(self, batch: pl.DataFrame) -> pl.DataFrame:
        raise NotImplementedError

    def finish(self, ctx: StageContext) -> None:
        """After every batch: write side tables into ctx.out_dir."""


def check_keys(where: str, given: Iterable[str], known: Iterable[str], what: str = "option") -> None:
    """The one message for unknown keys, in stage options and in the config alike."""
    known = list(known)
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise CurateError(
            f"{where}: unknown {what}(s) {', '.join(unknown)}{did_you_mean(unknown[0], known)} "
            f"(known: {', '.join(sorted(known)) or 'none'})"
        )


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _fits(value: Any, kinds: tuple[type, ...]) -> bool:
    if isinstance(value, bool):  # bool is an int to Python, never to a config
        return bool in kinds
    if isinstance(value, int) and float in kinds:
        return True
    return isinstance(value, tuple(kinds) + ((tuple,) if list in kinds else ()))


def check_options(cls: type[Stage], options: dict[str, Any]) -> dict[str, Any]:
    """The stage's options (defaults, then `options`), checked as the Stage docstring says."""
    where = f"stage {cls.name}"
    for key in sorted(set(options) & set(cls.removed)):
        raise CurateError(f"{where}: option {key} was removed: {cls.removed[key]}")
    check_keys(where, options, cls.defaults)
    for key, value in options.items():
        default = cls.defaults[key]
        kind = cls.types.get(key) or (type(default) if default is not None else None)
        if kind is not None and not (value is None and default is None) and not _fits(value, _kinds(kind)):
            names = " or ".join(
                {"float": "number", "dict": "mapping"}.get(k.__name__, k.__name__) for k in _kinds(kind)
            )
            raise CurateError(f"{where}: option {key} must be a {names}, got {value!r}")
        if key in cls.choices and value not in cls.choices[key]:
            allowed = ", ".join(str(c) for c in cls.choices[key])
            raise CurateError(f"{where}: option {key} must be one of {allowed}, got {value!r}")
    return {**cls.defaults, **options}


@dataclass(frozen=True)
class InputPiece:
    """`rows` rows of one input part from row `offset`: an item of StageContext.map that names its
    rows instead of carrying them (a task reads them itself, through the shared workspace path)."""

    path: str
    offset: int
    rows: int

    def scan(self) -> pl.LazyFrame:
        """The piece's rows, lazily (select only the columns you need)."""
        return pl.scan_parquet(self.path).slice(self.offset, self.rows)


@dataclass
class StageContext:
    workspace: Workspace
    index: int
    out_dir: Path
    previous: StageDir | None
    workers: int = 1
    progress: bool = True
    stats: dict[str, Any] = field(default_factory=dict)
    # Set by the engine (curate.engine): how `map` runs. None: in this process, one item after another.
    mapper: Mapper | None = None

    def map(self, fn: Callable[[T, Any], R], items: Iterable[T], shared: Any = None) -> Iterator[R]:
        """`fn(item, shared)` for every item, results in input order, as parallel as the engine
        makes it: in this process, a local process pool (--workers) or Ray tasks (retried when a
        worker dies). `fn` is a module-level function (it is pickled by name); items, `shared` and
        results are picklable (Arrow tables, numpy arrays, small Python objects). `shared` is sent
        once per worker, not per item: put what every call reads (a lookup table) there. It is for
        `prepare` (the global pass): the local engine's pool lives while `prepare` runs."""
        if self.mapper is not None:
            return self.mapper(fn, items, shared)
        return (fn(item, shared) for item in items)

    def input_parts(self) -> list[Path]:
        return self.previous.parts() if self.previous else []

    def scan(self) -> pl.LazyFrame:
        """The whole input, lazily (for global stages: select only the columns you need)."""
        parts = self.input_parts()
        if not parts:
            raise CurateError(f"stage {self.index}: no input rows (did ingest produce any?)")
        return pl.scan_parquet([str(p) for p in parts])

    def input_rows(self) -> int:
        return sum(pq.ParquetFile(p).metadata.num_rows for p in self.input_parts())

    def input_batches(self, batch_rows: int = BATCH_ROWS) -> Iterator[pl.DataFrame]:
        for part in self.input_parts():
            # pre_buffer (pyarrow's default) caches every column chunk read until the file is
            # closed: a whole part (up to ROWS_PER_PART rows, ~1 GB of traces) held while streaming it.
            for batch in pq.ParquetFile(part, pre_buffer=False).iter_batches(batch_size=batch_rows):
                yield pl.from_arrow(batch)

    def input_pieces(self, rows: int) -> list[InputPiece]:
        """The input cut into pieces of at most `rows` rows (none across two parts), in row order."""
        pieces = []
        for part in self.input_parts():
            total = pq.ParquetFile(part).metadata.num_rows
            pieces += [
                InputPiece(str(part), start, min(rows, total - start)) for start in range(0, total, rows)
            ]
        return pieces

    def input_batch_sizes(self, batch_rows: int = BATCH_ROWS) -> list[int]:
        """The row counts of the batches input_batches yields, from the parts' metadata alone."""
        sizes = []
        for part in self.input_parts():
            rows = pq.ParquetFile(part).metadata.num_rows
            sizes += [batch_rows] * (rows // batch_rows) + ([rows % batch_rows] if rows % batch_rows else [])
        return sizes

    def write_side_table(self, name: str, table: pa.Table | pl.DataFrame) -> None:
        from curate.schema import SIDE_TABLE_SCHEMAS

        if isinstance(table, pl.DataFrame):
            table = table.to_arrow()
        schema = SIDE_TABLE_SCHEMAS[name]
        pq.write_table(
            table.select(schema.names).cast(schema), self.out_dir / f"{name}.parquet", compression="zstd"
        )


def keep(batch: pl.DataFrame) -> pl.DataFrame:
    """Keep every row of the batch."""
    return batch.with_columns(pl.lit(None, pl.String).alias(REASON), pl.lit(None, pl.String).alias(DETAIL))


def decide(batch: pl.DataFrame, drop: pl.Expr, reason: str | pl.Expr, detail: pl.Expr) -> pl.DataFrame:
    """Drop rows where `drop` holds, with a reason (a name, or an expression per row); rows
    already dropped keep their first reason."""
    if REASON not in batch.columns:
        batch = keep(batch)
    fresh = drop.fill_null(False) & pl.col(REASON).is_null()
    reason_expr = pl.lit(reason) if isinstance(reason, str) else reason.cast(pl.String)
    return batch.with_columns(
        pl.when(fresh).then(reason_expr).otherwise(pl.col(REASON)).alias(REASON),
        pl.when(fresh).then(detail.cast(pl.String)).otherwise(pl.col(DETAIL)).alias(DETAIL),
    )


def rows_of(table: pl.DataFrame, batch: pl.DataFrame) -> pl.DataFrame:
    """The slice of `table` (sorted by row_id: a table per row that `prepare` made) covering the
    batch's row_id range: what a batch joins, so that it does not pay for the whole table (a join
    per batch against every row of the input is quadratic in the input)."""
    if not (batch.height and table.height):
        return table
    ids = table["row_id"]
    lo = ids.search_sorted(batch["row_id"].min(), side="left")
    hi = ids.search_sorted(batch["row_id"].max(), side="right")
    return table.slice(lo, hi - lo)


def apply_decisions(batch: pl.DataFrame, decisions: pl.DataFrame) -> pl.DataFrame:
    """`decide` from a table made in `prepare` (global stages): decisions has row_id, reason and
    detail, sorted by row_id; only the slice covering the batch is joined (`rows_of`)."""
    decisions = rows_of(decisions, batch)
    joined = batch.join(
        decisions.select("row_id", pl.col("reason").alias("_why"), pl.col("detail").alias("_why_detail")),
        on="row_id",
        how="left",
        maintain_order="left",
    )
    out = keep(joined)
    for reason in sorted(decisions["reason"].unique().drop_nulls().to_list()):
        out = decide(out, pl.col("_why") == reason, reason, pl.col("_why_detail"))
    return out.drop("_why", "_why_detail")


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:32]


def fingerprint_basis(previous: str, stage: Stage) -> dict[str, Any]:
    """What a stage's output depends on: the previous stage's fingerprint, the stage's code
    (curate.codehash: its module and the project modules it uses) and `Stage.fingerprint()`
    (options, inputs, model checksums). Kept in the stage's entry so that a rerun can say which
    part changed."""
    return {
        "previous": previous,
        "code": code_hash(type(stage).__module__),
        "depends_on": stage.fingerprint(),
    }


def stage_fingerprint(previous: str, stage: Stage) -> str:
    return _fingerprint(stage.name, fingerprint_basis(previous, stage))


def _fingerprint(name: str, basis: dict[str, Any]) -> str:
    return _digest({"stage": name, **basis})


def redo_reasons(old: dict[str, Any], basis: dict[str, Any]) -> list[str]:
    """Why a committed stage (its manifest entry `old`) is out of date under the new `basis`."""
    if "code" not in old:
        return ["it was made by an older distillery"]
    reasons = []
    if old["code"] != basis["code"]:
        reasons.append("its code changed")
    before, after = old.get("depends_on", {}), basis["depends_on"]
    for key in sorted(set(before) | set(after)):
        if _digest(before.get(key)) == _digest(after.get(key)):
            continue
        if key == "options":
            reasons.append("options changed: " + _changes(before.get(key) or {}, after.get(key) or {}))
        elif key == "inputs":
            reasons.append("inputs changed: " + _input_changes(before.get(key) or [], after.get(key) or []))
        elif key != "version":
            reasons.append(f"{key} changed")
    if old["previous"] != basis["previous"] and not reasons:
        reasons.append("its input changed (an earlier stage was redone)")
    return reasons or ["its fingerprint changed"]


def _changes(before: dict[str, Any], after: dict[str, Any]) -> str:
    keys = [k for k in sorted(set(before) | set(after)) if _digest(before.get(k)) != _digest(after.get(k))]
    return ", ".join(
        f"{k} {json.dumps(before.get(k), default=str)} -> {json.dumps(after.get(k), default=str)}"
        for k in keys
    )


def _input_changes(before: list[dict], after: list[dict]) -> str:
    old, new = {i["path"]: i for i in before}, {i["path"]: i for i in after}
    said = [f"+{p}" for p in new if p not in old] + [f"-{p}" for p in old if p not in new]
    for path in (p for p in new if p in old and _digest(old[p]) != _digest(new[p])):
        what = [k for k in sorted(new[path]) if _digest(new[path][k]) != _digest(old[path].get(k))]
        said.append(f"{path} ({', '.join('content' if k == 'sha256' else k for k in what)})")
    return ", ".join(said)


def to_arrow(batch: pl.DataFrame | pa.Table) -> pa.Table:
    """Arrow with plain string and list types, so every part of every stage has one stable schema.
    A stage whose `read` builds Arrow tables itself (ingest) yields them as they are: no Polars trip."""
    return plain_strings(batch if isinstance(batch, pa.Table) else batch.to_arrow())


class _PartWriter:
    """Appends tables to numbered Parquet parts (or to one file), casting to the first schema."""

    def __init__(self, folder: Path, single_file: str | None = None):
        self.folder, self.single_file = folder, single_file
        self.writer: pq.ParquetWriter | None = None
        self.schema: pa.Schema | None = None
        self.part, self.rows_in_part, self.rows = 0, 0, 0

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        # One chunk per table: Parquet cuts row groups at chunk boundaries, and how Polars chunks
        # its output depends on its thread count, not on the rows (engines and machines differ).
        table = table.combine_chunks()
        if self.schema is None:
            self.schema = table.schema
        elif table.schema != self.schema:
            table = table.select(self.schema.names).cast(self.schema)
        if self.writer is None:
            name = self.single_file or f"part-{self.part:05d}.parquet"
            self.writer = pq.ParquetWriter(self.folder / name, self.schema, compression="zstd")
        self.writer.write_table(table)
        self.rows += table.num_rows
        self.rows_in_part += table.num_rows
        if self.single_file is None and self.rows_in_part >= ROWS_PER_PART:
            self._close_part()

    def _close_part(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer, self.rows_in_part = None, 0
            self.part += 1

    def close(self) -> None:
        self._close_part()


def ordered_pool_map(
    fn: Callable[[Any], Any],
    items: Iterable[Any],
    workers: int,
    initializer: Callable[..., None] | None = None,
    initargs: tuple = (),
    window: int | None = None,
) -> Iterator[Any]:
    """map() over a process pool, results in input order, at most `window` items in flight
    (Executor.map would read the whole input ahead and defeat streaming)."""
    context = multiprocessing.get_context("spawn")
    window = window or 2 * workers
    with cf.ProcessPoolExecutor(
        workers, mp_context=context, initializer=initializer, initargs=initargs
    ) as pool:
        pending: deque[cf.Future] = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _split_decisions(table: pa.Table, stage_name: str) -> tuple[pa.Table, pa.Table]:
    if REASON not in table.column_names:
        raise CurateError(
            f"stage {stage_name}: process() must return the `{REASON}` column (use keep/decide)"
        )
    if table[REASON].null_count == table.num_rows:  # nothing dropped (most batches): no copy of the rows
        kept, dropped = table.drop_columns([REASON, DETAIL]), table.slice(0, 0)
    else:
        dropped_mask = pc.is_valid(table[REASON])
        kept = table.filter(pc.invert(dropped_mask)).drop_columns([REASON, DETAIL])
        dropped = table.filter(dropped_mask)
    dropped = dropped.rename_columns(
        ["reason" if n == REASON else "detail" if n == DETAIL else n for n in dropped.column_names]
    ).append_column("stage", pa.array([stage_name] * dropped.num_rows, pa.string()))
    return kept, rejected_table(dropped)  # one schema for every stage's rejected file


def run_stage(
    ws: Workspace,
    index: int,
    stage: Stage,
    fingerprint: str | None,
    workers: int,
    progress: bool,
    basis: dict[str, Any] | None = None,
    engine: Engine | None = None,
    previous_fingerprint: str = "",
) -> dict:
    """Run one stage into a temporary folder and commit it. Returns its manifest entry (with the
    fingerprint's `basis`, so that a later rerun can say what changed). The engine (curate.engine;
    default local) runs the stage's work; the files are written here, the same for every engine.
    A `fingerprint` of None is taken once the stage has run, over `previous_fingerprint` (the
    stage before's; see Stage.late_fingerprint)."""
    engine = engine or _local_engine(workers)
    started = time.time()
    tmp = ws.begin(index, stage.name)  # drops this stage and later ones of an earlier run first,
    previous = ws.last()  # so that the input is the stage before, never a stale later one
    ctx = StageContext(ws, index, tmp, previous, workers, progress)
    engine.prepare(stage, ctx)
    kept_writer, rejected_writer = _PartWriter(tmp), _PartWriter(tmp, single_file="rejected.parquet")
    reasons: Counter[str] = Counter()
    results = engine.results(stage, ctx)
    total = ctx.input_rows() if previous is not None else None
    with tqdm(
        total=total, desc=f"{index:02d} {stage.name}", unit="row", disable=not progress, leave=False
    ) as bar:
        for result in results:
            kept, dropped = _split_decisions(result, stage.name)
            kept_writer.write(kept)
            rejected_writer.write(dropped)
            reasons.update(dropped["reason"].to_pylist())
            bar.update(result.num_rows)
    kept_writer.close()
    rejected_writer.close()
    stage.finish(ctx)
    if fingerprint is None:
        basis = fingerprint_basis(previous_fingerprint, stage)
        fingerprint = _fingerprint(stage.name, basis)
    info = {
        "index": index,
        "name": stage.name,
        "fingerprint": fingerprint,
        "status": "committed",
        "rows_in": kept_writer.rows + rejected_writer.rows,
        "rows_out": kept_writer.rows,
        "dropped": rejected_writer.rows,
        "by_reason": dict(sorted(reasons.items())),
        "seconds": round(time.time() - started, 3),
        "options": stage.options,
        **ctx.stats,
        **(basis or {}),
    }
    ws.commit(index, stage.name, tmp, info)
    return info


def _local_engine(workers: int) -> Engine:
    from curate.engine.local import LocalEngine  # curate.engine.local imports this module

    return LocalEngine(workers)


def run_stages(
    ws: Workspace,
    stages: list[Stage],
    workers: int = 1,
    progress: bool = True,
    stop_when_empty: bool = False,
    engine: Engine | None = None,
) -> list[dict]:
    """Run the pipeline, reusing every committed stage whose fingerprint still matches; a stage
    that is redone says why (on stderr), and so does a stage that dropped (nearly) all of one
    input's rows for a reason an option controls (curate.losses). With `stop_when_empty`, a stage
    that keeps no row ends the run with EmptyResult instead of running the rest on nothing."""
    fingerprint, results = "", []
    for index, stage in enumerate(stages):
        folder = StageDir(index, stage.name, ws.stages_dir / stage_label(index, stage.name))
        committed = (folder.path / STAGE_INFO).exists()
        if stage.late_fingerprint and not committed:  # it runs whatever its fingerprint
            info = run_stage(ws, index, stage, None, workers, progress, None, engine, fingerprint)
        else:
            basis = fingerprint_basis(fingerprint, stage)
            fingerprint = _fingerprint(stage.name, basis)
            if ws.is_current(index, stage.name, fingerprint):
                info = {**folder.info(), "reused": True}
            else:
                if committed:
                    why = "; ".join(redo_reasons(folder.info(), basis))
                    later = " (and so the stages after it)" if index < len(stages) - 1 else ""
                    print(f"redo {index:02d} {stage.name}{later}: {why}", file=sys.stderr)
                info = run_stage(ws, index, stage, fingerprint, workers, progress, basis, engine)
        fingerprint = info["fingerprint"]
        results.append(info)
        for line in loss_warnings(ws, folder, stage.options):
            print(line, file=sys.stderr)
        if stop_when_empty and info["rows_out"] == 0:
            ws.invalidate_from(index + 1)
            raise EmptyResult(empty_message(ws, info), results)
    ws.invalidate_from(len(stages))
    return results
