"""near_dedup: MinHash LSH over normalised problems, confirmed by true Jaccard similarity.

1. Rows are grouped by normalised problem (curate.text); each distinct problem is one node.
2. Each node's shingles (token n-grams, `shingle_size`) get a MinHash signature (rensa's
   RMinHash, a whole chunk of nodes in one call; curate.dedup.minhash). Signatures are written to
   `signatures.parquet` in the stage folder (node, first row_id, uint32[num_perm]).
3. Banding: `bands` x `rows` band hashes per node, sorted and cut into buckets with Polars, one
   band at a time; nodes sharing a bucket are candidates. By default bands/rows are chosen so
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

Memory: per row about 80 bytes (row_id, id, ranking facts); per distinct problem the band hashes
(4 bytes x bands); for the problems of candidate pairs only, their shingle sets (4 bytes per
shingle) and content tokens (8 bytes each). Problem texts are read back and normalised
NODE_CHUNK at a time, never all at once. Shuffle: by (band, band hash).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from curate.dedup import (
    MinHasher,
    band_hashes,
    bands_for_threshold,
    candidate_pairs,
    jaccard,
    shingle,
    union_find,
)
from curate.dedup.lsh import TokenLists, only_insertions
from curate.dedup.minhash import ALGORITHM as MINHASH_ALGORITHM
from curate.dedup.shingles import SHINGLE_KINDS, Shingles
from curate.dedup.survivors import JOIN_BATCH_ROWS, MAX_TRACES_REMOVED, choose, rank_sort, row_features
from curate.errors import CurateError
from curate.stage import Stage, StageContext, apply_decisions
from curate.text import content_expr, light_normalize_expr, normalize_expr

NODE_CHUNK = 10_000  # distinct problems shingled and signed at a time
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
        rows = row_features(ctx.scan(), normalize_expr("problem")).collect(engine="streaming")
        nodes = (
            rows.group_by("k0", "k1")
            .agg(pl.col("row_id").min().alias("first_row"), pl.col("plen").first())
            .sort("first_row")
            .with_row_index("node")
        )
        rows = rows.join(nodes.select("k0", "k1", "node"), on=["k0", "k1"]).drop("k0", "k1").sort("row_id")
        bands, nonempty = self._sign(ctx, nodes)
        candidates = candidate_pairs(bands, nonempty, self.options["max_bucket"])
        del bands
        # Only nodes of a candidate pair can be near-duplicates: work on them alone ("involved",
        # indexed 0..k-1), so shingle sets and content tokens are only ever held for those.
        involved = np.unique(candidates)
        shingles, content = self._features(ctx, nodes["first_row"].to_numpy()[involved])
        pairs = self._confirm(np.searchsorted(involved, candidates), shingles, content)
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
        self.lineage = choose(rows, "near_duplicate", near)
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

    @staticmethod
    def _node_texts(ctx: StageContext, first_rows: np.ndarray) -> pl.Series:
        """The normalised problems of rows `first_rows` (sorted), read back from the input."""
        return (
            ctx.scan()
            .filter(pl.col("row_id").is_between(int(first_rows[0]), int(first_rows[-1])))
            .filter(pl.col("row_id").is_in(pl.Series(first_rows).implode()))
            .select("row_id", normalize_expr("problem").alias("norm"))
            .sort("row_id")
            .collect()["norm"]
        )

    def _sign(self, ctx: StageContext, nodes: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Band hashes of every node and whether it has any shingle; the signatures are written
        to signatures.parquet. Nodes go NODE_CHUNK at a time: their texts are read back (the
        first row of each) and normalised again, so one chunk of text at most is in memory."""
        o = self.options
        hasher = MinHasher(o["num_perm"], o["seed"])
        schema = pa.schema(
            [
                ("node", pa.int64()),
                ("first_row", pa.int64()),
                ("signature", pa.list_(pa.uint32(), o["num_perm"])),
            ]
        )
        bands, nonempty = [np.zeros((0, self.bands), np.uint32)], [np.zeros(0, bool)]
        with pq.ParquetWriter(ctx.out_dir / "signatures.parquet", schema, compression="zstd") as writer:
            for start in range(0, len(nodes), NODE_CHUNK):
                chunk = nodes.slice(start, NODE_CHUNK)
                sets = shingle(
                    self._node_texts(ctx, chunk["first_row"].to_numpy()), o["shingle_size"], o["shingle"]
                )
                signatures = hasher.signatures(sets)
                bands.append(band_hashes(signatures, self.bands, self.rows))
                nonempty.append(sets.sizes() > 0)
                flat = pa.array(signatures.ravel(), pa.uint32())
                columns = {
                    "node": chunk["node"].cast(pl.Int64).to_arrow(),
                    "first_row": chunk["first_row"].to_arrow(),
                    "signature": pa.FixedSizeListArray.from_arrays(flat, o["num_perm"]),
                }
                writer.write_table(pa.table(columns, schema=schema))
        return np.concatenate(bands), np.concatenate(nonempty)

    def _features(self, ctx: StageContext, first_rows: np.ndarray) -> tuple[Shingles, TokenLists | None]:
        """Shingle sets and content tokens of the nodes whose first rows are `first_rows` (sorted)."""
        o = self.options
        sets, content = [], []
        for start in range(0, len(first_rows), NODE_CHUNK):
            texts = self._node_texts(ctx, first_rows[start : start + NODE_CHUNK])
            sets.append(shingle(texts, o["shingle_size"], o["shingle"]))
            if o["math_aware"]:
                content.append(TokenLists.from_series(pl.select(content_expr(pl.lit(texts))).to_series()))
        return Shingles.concat(sets), TokenLists.concat(content) if o["math_aware"] else None

    def _confirm(self, pairs: np.ndarray, shingles: Shingles, content: TokenLists | None) -> np.ndarray:
        """The candidate pairs that are near-duplicates (module docstring, step 4)."""
        o = self.options
        similar = jaccard(pairs, shingles)
        sizes = shingles.sizes()
        ok = similar >= o["threshold"]
        if o["containment"] is not None and len(pairs):
            small, large = np.minimum(sizes[pairs[:, 0]], sizes[pairs[:, 1]]), sizes[pairs].sum(axis=1)
            shared = np.rint(similar * large / (1.0 + similar))  # |A n B| from J = i / (|A| + |B| - i)
            ok |= shared >= o["containment"] * small
        confirmed = pairs[ok]
        if content is not None:
            confirmed = confirmed[only_insertions(confirmed, content)]
        return confirmed

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
        wanted = rows.filter(pl.col("has_response") & (pl.col("has_response").sum().over("cluster") > 1))
        wanted_ids = wanted["row_id"]
        signatures = np.zeros((len(wanted_ids), RESPONSE_PERM), dtype=np.uint32)
        responses = (
            ctx.scan()
            .select("row_id", light_normalize_expr("response").str.to_lowercase().alias("r"))
            .filter(pl.col("row_id").is_in(wanted_ids.implode()))
            .sort("row_id")
            .collect(engine="streaming")
        )
        hasher = MinHasher(RESPONSE_PERM, o["seed"])
        for start in range(0, responses.height, NODE_CHUNK):
            chunk = responses.slice(start, NODE_CHUNK)
            signatures[start : start + chunk.height] = hasher.signatures(
                shingle(chunk["r"], o["shingle_size"])
            )
        sorted_ids = responses["row_id"].to_numpy()
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
    def read(self, ctx: StageContext) -> Iterator[pl.DataFrame]:
        yield from ctx.input_batches(JOIN_BATCH_ROWS)

    def process(self, batch: pl.DataFrame) -> pl.DataFrame:
        return apply_decisions(batch, self.drops)

    def finish(self, ctx: StageContext) -> None:
        ctx.write_side_table(
            "clusters", self.lineage.with_columns(pl.lit(self.name).alias("stage")).sort("row_id")
        )
