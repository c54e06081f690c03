"""near_dedup: MinHash LSH over normalised problems, confirmed by true Jaccard similarity.

1. Rows are grouped by normalised problem (curate.text); each distinct problem is one node.
2. Each node's shingles (token n-grams, `shingle_size`) get a MinHash signature (rensa's
   RMinHash, a whole chunk of nodes in one call; curate.dedup.minhash). Signatures are written to
   `signatures.parquet` in the stage folder (node, first row_id, uint32[num_perm]).
3. Banding: `bands` x `rows` band hashes per node, each band sorted and cut into buckets
   (curate.dedup.lsh); nodes sharing a bucket are candidates. By default bands/rows are chosen so
   that a pair at Jaccard `lsh_threshold` becomes a candidate with 99% probability.
4. A candidate pair is a duplicate when its true Jaccard similarity is >= `threshold`, or when the
   smaller shingle set lies >= `containment` inside the larger (a copy with its last sentence cut).
   With `math_aware` (default) it must also differ by insertions only: the content tokens (words,
   numbers, relations and signs; curate.text.CONTENT_PATTERN) of one are an in-order subsequence
   of the other's. A truncated copy, a "Problem:" prefix or an appended instruction pass; a changed
   number, word or relation ("k < 0" / "k > 0", "the center" / "the radius") is another problem.
5. Union-find over the confirmed pairs gives clusters. With `math_aware`, a member that is not an
   insertion-only variant of its representative is split off (a truncated copy must not bridge two
   problems that differ in a number), and the clusters are recomputed.
6. Each cluster keeps its representative and every trace whose response is not near-identical
   to one already kept (estimated Jaccard of their response signatures >= `response_threshold`);
   the others are dropped as `near_duplicate` (curate.dedup.survivors).

The `clusters` view gets every row of a cluster of two or more rows, with its similarity (true
Jaccard of its problem with the representative's problem).

Where it runs (StageContext.map: a local process pool of --workers, or Ray tasks; the functions
are in curate.dedup.tasks). Tasks name their rows (an input piece and offsets in it) and read
them themselves, so no text travels. Figures per row measured on the 110k-document bench
(17,032 distinct problems after exact_dedup; pickled sizes):
- row keys, per input piece: 84 B a row back (two 64-bit problem hashes, the ranking facts).
- signing, per chunk of nodes (steps 1-2): 1,252 B a node back: signature 512, band hashes 168,
  shingle set and content tokens 572 (the features that step 4 needs; read and normalised once).
- the shuffle by band (step 3): each task gets a block of band columns (4 B x bands a node, 168)
  and buckets it by band hash; 16 B per candidate pair back (40,049 pairs here).
- confirmation (step 4), per chunk of candidate pairs: the involved nodes' features are shared
  (sent once per worker), a mask comes back.
- on the driver: the per-row table (about 100 B a row), band hashes (168 B a node) and every
  node's features (572 B) until the candidates are known, then only those of the nodes in a
  candidate pair (91% of them here); the candidate pairs (16 B each). Union-find, the math-aware
  split and the similarities (steps 5-6) run on the driver, which holds the candidate graph.
  Output bytes do not depend on the cut into tasks or the number of workers.
Each task runs its text expressions over one slice per Polars thread at once, so one task uses
every core; up to ONE_TASK_ROWS rows (ONE_TASK_PAIRS pairs) a phase is one task, which the local
engine runs in the driver: a local pool's start costs more than it saves there (docs/dedup.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from curate.dedup import bands_for_threshold, jaccard, union_find
from curate.dedup.lsh import TokenLists, merge_pairs, only_insertions
from curate.dedup.minhash import ALGORITHM as MINHASH_ALGORITHM
from curate.dedup.shingles import SHINGLE_KINDS, Shingles
from curate.dedup.survivors import JOIN_BATCH_ROWS, MAX_TRACES_REMOVED, choose, rank_sort
from curate.dedup.tasks import Shingling, bucket_pairs, confirm_pairs, row_keys, sign_nodes, sign_responses
from curate.errors import CurateError
from curate.stage import InputPiece, Stage, StageContext, apply_decisions

# Tasks: the work cut evenly over the workers, within these bounds (the output never depends on it).
ROW_PIECE = 250_000  # at most this many input rows per row-key task
NODE_CHUNK = 50_000  # at most this many input rows per signing / feature / response task
# Up to these sizes a phase is one task (the local engine runs it in the driver): a local pool's
# start (two spawned workers importing Polars, numpy and rensa, about 0.7 CPU s each, the driver
# waiting) costs more wall time than its second core saves there; the tasks' text work already
# runs on every Polars thread, and rensa signs on every core.
ONE_TASK_ROWS = 25_000
ONE_TASK_PAIRS = 200_000
BAND_CELLS = 4_000_000  # nodes x bands per bucketing task
PAIR_CHUNK = 200_000  # candidate pairs per confirmation task
SIGNATURE_GROUP = 10_000  # nodes per row group of signatures.parquet, whatever the cut into tasks
RESPONSE_PERM = 64


class NearDedup(Stage):
    name = "near_dedup"
    version = "1"
    defaults: dict[str, Any] = {
        "shingle": "token",
        "shingle_size": 5,
        "num_perm": 128,
        "seed": 1,
        "threshold": 0.7,
        "containment": 0.95,
        "lsh_threshold": 0.5,
        "bands": None,
        "rows": None,
        "max_bucket": 64,
        "math_aware": True,
        "response_threshold": 0.9,
    }
    choices = {"shingle": SHINGLE_KINDS}
    removed = {"max_traces": MAX_TRACES_REMOVED}
    parallel = False  # process() is a join against the decisions
    batch_rows = (
        JOIN_BATCH_ROWS  # the join batches; a batch_rows (not an own read) lets Ray workers read them
    )
    side_tables = ("clusters",)

    def __init__(self, **options: Any):
        super().__init__(**options)
        o = self.options
        for key in ("threshold", "lsh_threshold", "response_threshold"):
            if not 0.0 < float(o[key]) <= 1.0:
                raise CurateError(f"stage near_dedup: {key} must be in (0, 1], got {o[key]!r}")
        if (o["bands"] is None) != (o["rows"] is None):
            raise CurateError("stage near_dedup: give both bands and rows, or neither")
        if o["bands"] is None:
            self.bands, self.rows = bands_for_threshold(min(float(o["lsh_threshold"]), 0.999), o["num_perm"])
        else:
            self.bands, self.rows = int(o["bands"]), int(o["rows"])
        if self.bands * self.rows > o["num_perm"]:
            raise CurateError(f"stage near_dedup: bands x rows ({self.bands} x {self.rows}) exceeds num_perm")
        self.lineage = self.drops = pl.DataFrame()

    def fingerprint(self) -> dict[str, Any]:
        # Token hashes come from Polars and signatures from rensa, each stable for one version of
        # its algorithm: a new version recomputes.
        return {**super().fingerprint(), "polars": pl.__version__, "minhash": MINHASH_ALGORITHM}

    # -- prepare: nodes, signatures, candidates, clusters, decisions ------------------------------
    def prepare(self, ctx: StageContext) -> None:
        o = self.options
        pieces = ctx.input_pieces(_per_task(ctx.input_rows(), ctx.workers, ONE_TASK_ROWS, ROW_PIECE))
        if not pieces:
            ctx.scan()  # raises: no input rows
        rows = pl.concat(ctx.map(row_keys, pieces)).with_row_index("pos")  # pos: place in the input
        nodes = (
            rows.group_by("k0", "k1")
            .agg(
                pl.col("row_id").min().alias("first_row"),
                pl.col("pos").sort_by("row_id").first(),
                pl.col("plen").first(),
            )
            .sort("first_row")
            .with_row_index("node")
        )
        rows = rows.join(nodes.select("k0", "k1", "node"), on=["k0", "k1"]).drop("k0", "k1").sort("row_id")
        shingling = Shingling(
            o["shingle"], o["shingle_size"], o["num_perm"], o["seed"], self.bands, self.rows, o["math_aware"]
        )
        bands, nonempty, shingles, content = self._sign(ctx, nodes, shingling)
        candidates = self._candidates(ctx, bands, nonempty)
        del bands
        # Only nodes of a candidate pair can be near-duplicates: work on them alone ("involved",
        # indexed 0..k-1), their shingle sets and content tokens kept, the others' let go.
        involved = np.unique(candidates)
        shingles = shingles.take(involved)
        content = content.take(involved) if content is not None else None
        pairs = self._confirm(ctx, np.searchsorted(involved, candidates), shingles, content)
        rank = self._node_rank(rows, nodes)[involved]
        reps = self._clusters(len(involved), pairs, rank, content)
        labels = np.arange(len(nodes), dtype=np.int64)
        labels[involved] = involved[reps]
        similarity = np.ones(len(nodes))
        similarity[involved] = self._similarity_to_representative(reps, shingles)
        node_of_row = rows["node"].to_numpy()
        rows = rows.with_columns(
            pl.Series("cluster", labels[node_of_row]),
            pl.Series("similarity", similarity[node_of_row]),
        )
        near = self._near_identical_responses(ctx, rows)
        self.lineage = choose(rows.drop("pos"), "near_duplicate", near)
        self.drops = self.lineage.filter(~pl.col("kept")).select("row_id", "reason", "detail").sort("row_id")
        ctx.stats.update(
            distinct_problems=len(nodes),
            bands=self.bands,
            rows_per_band=self.rows,
            candidate_pairs=len(candidates),
            confirmed_pairs=len(pairs),
            clusters=self.lineage["cluster_id"].n_unique(),
            clustered_rows=self.lineage.height,
        )

    def _sign(
        self, ctx: StageContext, nodes: pl.DataFrame, shingling: Shingling
    ) -> tuple[np.ndarray, np.ndarray, Shingles, TokenLists | None]:
        """Band hashes of every node, whether it has any shingle, its shingle set and content
        tokens (sign_nodes, in parallel); the signatures are written to signatures.parquet as the
        chunks come back, in node order, and not kept."""
        num_perm = shingling.num_perm
        schema = pa.schema(
            [("node", pa.int64()), ("first_row", pa.int64()), ("signature", pa.list_(pa.uint32(), num_perm))]
        )
        bands, nonempty = [np.zeros((0, self.bands), np.uint32)], [np.zeros(0, bool)]
        sets: list[Shingles] = []
        tokens: list[TokenLists] = []
        done = 0
        path = ctx.out_dir / "signatures.parquet"
        # Signatures are hash values: dictionary encoding finds nothing to share and costs CPU.
        with pq.ParquetWriter(path, schema, compression="zstd", use_dictionary=False) as writer:
            groups = _RowGroups(writer, SIGNATURE_GROUP)
            items = node_items(_task_pieces(ctx), nodes["pos"].to_numpy())
            for signatures, band, chunk_sets, chunk_tokens in ctx.map(sign_nodes, items, shingling):
                chunk = nodes.slice(done, len(signatures))
                done += len(signatures)
                bands.append(band)
                nonempty.append(chunk_sets.sizes() > 0)
                sets.append(chunk_sets)
                if chunk_tokens is not None:
                    tokens.append(chunk_tokens)
                flat = pa.Array.from_buffers(pa.uint32(), signatures.size, [None, pa.py_buffer(signatures)])
                columns = {
                    "node": chunk["node"].cast(pl.Int64).to_arrow(),
                    "first_row": chunk["first_row"].to_arrow(),
                    "signature": pa.FixedSizeListArray.from_arrays(flat, num_perm),
                }
                groups.add(pa.table(columns, schema=schema))
            groups.flush()
        content = TokenLists.concat(tokens) if shingling.math_aware else None
        return np.concatenate(bands), np.concatenate(nonempty), Shingles.concat(sets), content

    def _candidates(self, ctx: StageContext, bands: np.ndarray, nonempty: np.ndarray) -> np.ndarray:
        """Candidate pairs (node indices), bucketed by band: each task takes a block of band
        columns (the shuffle by band; inside a task, by band hash) and the blocks' pairs are merged."""
        eligible = np.flatnonzero(nonempty)
        table = bands[eligible]
        per_block = max(1, BAND_CELLS // max(1, len(eligible)))
        blocks = (table[:, b : b + per_block] for b in range(0, self.bands, per_block))
        found = list(ctx.map(bucket_pairs, blocks, self.options["max_bucket"]))
        return eligible[merge_pairs(found, len(eligible))]

    def _confirm(
        self, ctx: StageContext, pairs: np.ndarray, shingles: Shingles, content: TokenLists | None
    ) -> np.ndarray:
        """The candidate pairs that are near-duplicates (module docstring, step 4), in chunks of
        pairs; the involved nodes' features are shared by all tasks."""
        o = self.options
        rule = (shingles, content, float(o["threshold"]), o["containment"])
        size = _per_task(len(pairs), ctx.workers, ONE_TASK_PAIRS, PAIR_CHUNK)
        chunks = (pairs[start : start + size] for start in range(0, len(pairs), size))
        keep = list(ctx.map(confirm_pairs, chunks, rule))
        return pairs[np.concatenate(keep)] if keep else pairs[:0]

    @staticmethod
    def _node_rank(rows: pl.DataFrame, nodes: pl.DataFrame) -> np.ndarray:
        """Position of each node in the representative ranking (curate.dedup.survivors), 0 = best."""
        best = rows.group_by("node").agg(
            pl.col("verifiable").max(), pl.col("has_response").max(), pl.col("row_id").min()
        )
        ordered = rank_sort(best.join(nodes.select("node", "plen"), on="node"))
        rank = np.empty(len(nodes), dtype=np.int64)
        rank[ordered["node"].to_numpy()] = np.arange(len(ordered))
        return rank

    @staticmethod
    def _representatives(labels: np.ndarray, rank: np.ndarray) -> np.ndarray:
        """For every node, the best-ranked node of its cluster."""
        order = np.lexsort((rank, labels))
        first = np.ones(len(order), dtype=bool)
        first[1:] = labels[order][1:] != labels[order][:-1]
        group = np.cumsum(first) - 1
        reps = np.empty(len(labels), dtype=np.int64)
        reps[order] = order[first][group]
        return reps

    def _clusters(
        self, n: int, pairs: np.ndarray, rank: np.ndarray, content: TokenLists | None
    ) -> np.ndarray:
        """Each node's representative (the cluster label), from the confirmed pairs."""
        while True:
            reps = self._representatives(union_find(n, pairs), rank)
            if content is None:
                return reps
            members = np.nonzero(reps != np.arange(n))[0]
            conflict = members[~only_insertions(np.stack([members, reps[members]], axis=1), content)]
            if len(conflict) == 0:
                return reps
            # cut the conflicting members loose from their cluster; they re-cluster among themselves
            loose = np.zeros(n, dtype=bool)
            loose[conflict] = True
            pairs = pairs[loose[pairs[:, 0]] == loose[pairs[:, 1]]]

    @staticmethod
    def _similarity_to_representative(labels: np.ndarray, shingles: Shingles) -> np.ndarray:
        similarity = np.ones(len(labels))
        members = np.nonzero(labels != np.arange(len(labels)))[0]
        similarity[members] = jaccard(np.stack([members, labels[members]], axis=1), shingles)
        return similarity

    def _near_identical_responses(self, ctx: StageContext, rows: pl.DataFrame):
        """A callback for curate.dedup.survivors.choose, over response signatures of the rows that
        share a cluster with another responded row (only those are ever compared)."""
        o = self.options
        wanted = rows.filter(
            pl.col("has_response") & (pl.col("has_response").sum().over("cluster") > 1)
        ).sort("row_id")
        items = node_items(_task_pieces(ctx), wanted["pos"].to_numpy())
        shingling = Shingling("token", o["shingle_size"], RESPONSE_PERM, o["seed"], 0, 0)
        found = list(ctx.map(sign_responses, items, shingling))
        signatures = np.concatenate(found) if found else np.zeros((0, RESPONSE_PERM), np.uint32)
        sorted_ids = wanted["row_id"].to_numpy()
        threshold = o["response_threshold"]

        def near_identical(row_ids: np.ndarray) -> np.ndarray:
            sigs = signatures[np.searchsorted(sorted_ids, row_ids)]
            repeat = np.zeros(len(row_ids), dtype=bool)
            kept: list[int] = []
            for i in range(len(row_ids)):
                if kept and (sigs[kept] == sigs[i]).mean(axis=1).max() >= threshold:
                    repeat[i] = True
                else:
                    kept.append(i)
            return repeat

        return near_identical

    # -- per batch and after ---------------------------------------------------------------------
    def process(self, batch: pl.DataFrame) -> pl.DataFrame:
        return apply_decisions(batch, self.drops)

    def finish(self, ctx: StageContext) -> None:
        ctx.write_side_table(
            "clusters", self.lineage.with_columns(pl.lit(self.name).alias("stage")).sort("row_id")
        )


class _RowGroups:
    """Writes tables as row groups of exactly `size` rows (the last one shorter), so that the file's
    bytes do not depend on how the rows arrived."""

    def __init__(self, writer: pq.ParquetWriter, size: int):
        self.writer, self.size = writer, size
        self.pending: list[pa.Table] = []
        self.rows = 0

    def add(self, table: pa.Table) -> None:
        self.pending.append(table)
        self.rows += table.num_rows
        while self.rows >= self.size:
            whole = pa.concat_tables(self.pending)
            self.writer.write_table(whole.slice(0, self.size).combine_chunks())
            rest = whole.slice(self.size)
            self.pending, self.rows = [rest], rest.num_rows

    def flush(self) -> None:
        if self.rows:
            self.writer.write_table(pa.concat_tables(self.pending).combine_chunks())
        self.pending, self.rows = [], 0


# -- how the parallel phases (curate.dedup.tasks) are cut ------------------------------------


def _per_task(total: int, workers: int, single: int, most: int) -> int:
    """Items per task: one task for at most `single` items, else `total` cut evenly over the
    workers, at most `most` a task."""
    if total <= single:
        return max(1, total)
    return max(1, min(most, -(-total // max(1, workers))))


def _task_pieces(ctx: StageContext) -> list[InputPiece]:
    """The input cut for the per-node tasks (signing, features, responses)."""
    return ctx.input_pieces(_per_task(ctx.input_rows(), ctx.workers, ONE_TASK_ROWS, NODE_CHUNK))


def node_items(pieces: list[InputPiece], positions: np.ndarray) -> Iterator[tuple[InputPiece, np.ndarray]]:
    """(piece, offsets in the piece) of the rows at input `positions` (sorted), piece by piece: a
    task reads its rows itself, so only row numbers travel."""
    start = 0
    for piece in pieces:
        lo, hi = np.searchsorted(positions, [start, start + piece.rows])
        if hi > lo:
            yield piece, positions[lo:hi] - start
        start += piece.rows
