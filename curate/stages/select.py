"""select: choose which verified traces to train on, every unselected row rejected with its reason.

Steps, in order (a row leaves at the first that drops it):

    too_easy           problems every sample solves (pass rate >= `easy_pass_rate` over at least
                       `easy_min_samples` verified generations) are down-sampled to `easy_keep`,
                       a seeded choice of whole problems (difficulty grading, AM-Distill)
    length_selection   per domain, rows outside the `length_quantiles` window of token length
    per_problem_cap    at most `max_per_problem` generations per problem (default: no cap, every
                       distinct verified trace is kept): passing traces first (before unverified
                       `no_reference` ones), then the preferred ones
    over_target        per domain at most `targets[domain]` rows; filled problem by problem (every
                       problem's best generation before any problem's second), then by preference

`prefer` orders generations: shortest (default: shorter correct traces teach the same answer in
fewer tokens), longest, hardest (lowest pass rate, then longest) or random; ties break on a seeded
hash. Pass rates come from the verify stage's verdicts on *all* checked generations of a problem
(verify drops the failures, so the rows that reach select alone would all say 100%; prompts and
`no_reference` rows were not checked and do not count), or, without verify,
from a boolean per-sample field of `meta` named by `pass_field` (e.g. `score`,
`correctness_math_verify`). The stage adds `pass_rate` and `n_samples` (verified generations).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from curate.errors import CurateError
from curate.rows import seeded_key
from curate.stage import DETAIL, REASON, Stage, StageContext, decide, keep, rows_of

PREFERENCES = ("shortest", "longest", "hardest", "random")
UNCHECKED = ("no_reference", "prompt")  # verify statuses that say nothing about a pass rate


class Select(Stage):
    name = "select"
    version = "1"
    parallel = False  # process() is a join against decisions made in prepare(): a pool only copies
    defaults = {
        "easy_pass_rate": 1.0,
        "easy_min_samples": 2,
        "easy_keep": 1.0,  # share of easy problems kept; 1.0 keeps them all
        "length_quantiles": [0.0, 1.0],
        "max_per_problem": None,
        "targets": {},  # domain -> rows
        "prefer": "shortest",
        "pass_field": None,  # meta key with a per-sample boolean verdict, used when verify did not run
        "seed": 0,
    }
    types = {"max_per_problem": int, "pass_field": str, "seed": (int, str)}
    choices = {"prefer": PREFERENCES}

    def __init__(self, **options: Any):
        super().__init__(**options)
        opts = self.options
        low, high = opts["length_quantiles"]
        if not 0.0 <= low <= high <= 1.0:
            raise CurateError("stage select: length_quantiles must be [low, high] with 0 <= low <= high <= 1")
        self.decisions: pl.DataFrame | None = None

    def prepare(self, ctx: StageContext) -> None:
        if not ctx.input_parts():  # an earlier stage dropped every row
            self.decisions = pl.DataFrame(schema={"row_id": pl.Int64})
            return
        lf = ctx.scan()
        names = lf.collect_schema().names()
        length = pl.col("n_tokens") if "n_tokens" in names else _whitespace_length()
        passed = pl.col("verify_status") == "pass" if "verify_status" in names else pl.lit(True)
        rows = lf.select(
            "row_id", "problem_id", "domain", length.alias("_length"), passed.alias("_passed")
        ).collect()
        passes, source = self._pass_stats(ctx, lf, names)
        ctx.stats["pass_rate_from"] = source
        if passes is not None:
            rows = rows.join(passes, on="problem_id", how="left")
        else:
            rows = rows.with_columns(
                pl.lit(None, pl.Float64).alias("pass_rate"), pl.lit(None, pl.Int64).alias("n_samples")
            )
        rows = rows.with_columns(
            pl.Series("_key", seeded_key(rows["row_id"].to_list(), self.options["seed"]))
        )
        rows = self._select(rows)
        kept = rows.filter(pl.col(REASON).is_null())
        ctx.stats["selected_by_domain"] = dict(sorted(kept.group_by("domain").len().iter_rows()))
        self.decisions = rows.select("row_id", "pass_rate", "n_samples", REASON, DETAIL).sort("row_id")

    def _pass_stats(
        self, ctx: StageContext, lf: pl.LazyFrame, names: list[str]
    ) -> tuple[pl.DataFrame | None, str | None]:
        """Per problem: pass rate and number of verified generations, and where they came from."""
        verify = ctx.workspace.stage("verify")
        ingest = ctx.workspace.stage("ingest")
        if verify is not None and ingest is not None and (verify.path / "verify.parquet").exists():
            verdicts = (
                pl.scan_parquet(verify.path / "verify.parquet")
                .select("row_id", "status")
                .filter(~pl.col("status").is_in(UNCHECKED))
            )
            problems = pl.scan_parquet([str(p) for p in ingest.parts()]).select("row_id", "problem_id")
            passed = verdicts.join(problems, on="row_id").select("problem_id", pl.col("status") == "pass")
            source = "verify"
        elif "verify_status" in names:
            passed = lf.filter(~pl.col("verify_status").is_in(UNCHECKED)).select(
                "problem_id", pl.col("verify_status") == "pass"
            )
            source = "verify_status"
        elif self.options["pass_field"]:
            # Every generation, not only those that reached select: earlier stages drop some.
            every = pl.scan_parquet([str(p) for p in ingest.parts()]) if ingest is not None else lf
            verdict = pl.col("meta").str.json_path_match(f"$.{self.options['pass_field']}").str.to_lowercase()
            passed = (
                every.select("problem_id", verdict.alias("verdict"))
                .filter(pl.col("verdict").is_not_null())
                .select("problem_id", pl.col("verdict").is_in(["true", "1", "1.0", "pass"]).alias("status"))
            )
            source = f"meta.{self.options['pass_field']}"
        else:
            return None, None
        stats = (
            passed.group_by("problem_id")
            .agg(pl.col("status").mean().alias("pass_rate"), pl.len().cast(pl.Int64).alias("n_samples"))
            .collect()
        )
        return stats, source

    def _select(self, rows: pl.DataFrame) -> pl.DataFrame:
        opts = self.options
        rows = keep(rows)
        easy = (pl.col("pass_rate") >= opts["easy_pass_rate"]) & (
            pl.col("n_samples") >= opts["easy_min_samples"]
        )
        if opts["easy_keep"] < 1.0:
            problem_key = pl.Series(seeded_key(rows["problem_id"].to_list(), f"{opts['seed']}:easy"))
            rows = decide(
                rows,
                easy & (problem_key >= opts["easy_keep"]),
                "too_easy",
                pl.format(
                    "pass rate {} over {} samples; {}% of easy problems kept",
                    pl.col("pass_rate").round(3),
                    pl.col("n_samples"),
                    pl.lit(round(opts["easy_keep"] * 100, 1)),
                ),
            )
        low, high = opts["length_quantiles"]
        if (low, high) != (0.0, 1.0):
            alive = pl.col(REASON).is_null()
            lo = pl.col("_length").filter(alive).quantile(low, "nearest").over("domain")
            hi = pl.col("_length").filter(alive).quantile(high, "nearest").over("domain")
            rows = decide(
                rows,
                (pl.col("_length") < lo) | (pl.col("_length") > hi),
                "length_selection",
                pl.format(
                    "{} tokens outside the {} window [{}, {}]", pl.col("_length"), pl.col("domain"), lo, hi
                ),
            )
        rows = rows.with_columns(self._rank_within_problem().alias("_problem_rank"))
        if opts["max_per_problem"] is not None:
            rows = decide(
                rows,
                pl.col("_problem_rank") > opts["max_per_problem"],
                "per_problem_cap",
                pl.format(
                    "generation {} of its problem; max_per_problem {}",
                    pl.col("_problem_rank"),
                    pl.lit(opts["max_per_problem"]),
                ),
            )
        for domain, target in sorted(opts["targets"].items()):
            alive = pl.col(REASON).is_null() & (pl.col("domain") == domain)
            order = pl.struct(
                pl.col("_problem_rank").alias("problem_rank"), self._preference().alias("preference")
            )
            rank = pl.when(alive).then(order.rank("ordinal").over(alive))
            rows = decide(
                rows,
                alive & (rank > target),
                "over_target",
                pl.format("domain {} keeps its best {} rows", pl.col("domain"), pl.lit(target)),
            )
        return rows

    def _preference(self) -> pl.Expr:
        """Sort key of a row among its competitors: smaller is preferred."""
        length, key = pl.col("_length").alias("length"), pl.col("_key").alias("key")
        prefer = self.options["prefer"]
        if prefer == "shortest":
            return pl.struct(length, key)
        if prefer == "longest":
            return pl.struct(-length, key)
        if prefer == "hardest":
            return pl.struct(pl.col("pass_rate").fill_null(1.0).alias("pass_rate"), -length, key)
        return pl.struct(key)

    def _rank_within_problem(self) -> pl.Expr:
        """1 for a problem's preferred live generation, 2 for the next …: passing traces before
        unverified ones, then by preference; dropped rows rank last."""
        dropped = pl.col(REASON).is_not_null().alias("dropped")
        unverified = (~pl.col("_passed")).alias("unverified")
        return (
            pl.struct(dropped, unverified, self._preference().alias("preference"))
            .rank("ordinal")
            .over("problem_id")
            .cast(pl.Int64)
        )

    def process(self, batch: pl.DataFrame) -> pl.DataFrame:
        assert self.decisions is not None, "prepare() builds the decisions"
        return batch.join(rows_of(self.decisions, batch), on="row_id", how="left", maintain_order="left")


def _whitespace_length() -> pl.Expr:
    """Words of problem + reasoning + response, when the quality stage did not count tokens."""
    text = pl.concat_str(
        [pl.col("problem"), pl.col("reasoning"), pl.col("response")], separator=" ", ignore_nulls=True
    )
    return text.str.count_matches(r"\S+").cast(pl.Int64)
