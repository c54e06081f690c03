"""verify: check every trace against its reference answer (math) or its tests (code).

A row with `tests` is code, else a row with `reference` is math, else it is `no_reference`; a row
with no response is a `prompt` (a prompt for generation, not a failed answer), always rejected: it
has nothing to train on. Statuses are design §4's (docs/design.md). Rows whose status is in `keep`
(default: pass) survive, and so do `no_reference` rows (a trace that cannot be checked is not a wrong one),
flagged by their `verify_status` and counted apart (`flagged` in the manifest and the funnel,
decision `flag` in the ledger) unless `require_reference: true` drops them. The others are
rejected with the status as reason and the verifier's detail. Each verdict is also a row of the
`verify` side table, whatever became of the trace. The seconds each verdict took go to
`verify_timings.csv` beside it, not into the Parquet data (the SQL view `verify` joins them back).

The verifiers run their own isolated worker pools (math: killable sympy workers; code: sandboxed
processes), so this stage runs its batches in the main process and hands them to those pools.
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from curate.errors import CurateError
from curate.schema import SIDE_TABLE_SCHEMAS
from curate.stage import Stage, StageContext, decide
from curate.verify.result import STATUSES, Verdict

# Seconds per verdict, kept apart from the Parquet data: those files must not depend on how fast the
# machine ran (every Parquet file of a workspace is byte-identical across runs, docs/reliability.md).
TIMINGS = "verify_timings.csv"
NO_RESPONSE = Verdict("prompt", None, "no response: a prompt for generation, nothing to train on")
NO_REFERENCE = Verdict("no_reference", None, "no reference answer and no tests")


def without_timings(detail: str) -> str:
    """A verdict's detail without the per-case `seconds` of code verdicts (see TIMINGS)."""
    if not detail.startswith("{"):
        return detail
    try:
        parsed = json.loads(detail)
    except ValueError:
        return detail
    cases = parsed.get("cases") if isinstance(parsed, dict) else None
    if not isinstance(cases, list):
        return detail
    for case in cases:
        if isinstance(case, dict):
            case.pop("seconds", None)
    return json.dumps(parsed, ensure_ascii=False)


class Verify(Stage):
    name = "verify"
    version = "1"
    parallel = False
    side_tables = ("verify",)
    defaults = {
        "keep": ["pass"],
        "require_reference": False,  # True: drop rows with no reference answer and no tests
        "workers": None,  # default: curate's --workers
        "math_timeout_s": 5.0,
        "math_memory_mb": 1024,
        "code_isolation": "auto",  # auto | bwrap | unshare | none (trusted code only)
        "code_time_limit_s": 4.0,
        "code_memory_mb": 512,
    }

    types = {"workers": int}
    choices = {"code_isolation": ("auto", "bwrap", "unshare", "none")}

    def __init__(self, **options: Any):
        super().__init__(**options)
        keep = set(self.options["keep"])
        unknown = keep - set(STATUSES)
        if unknown:
            raise CurateError(
                f"stage verify: unknown status(es) in keep: {', '.join(sorted(unknown))} (known: {', '.join(STATUSES)})"
            )
        if "prompt" in keep:
            raise CurateError("stage verify: keep cannot hold `prompt`: a prompt has no response to train on")
        if not self.options["require_reference"]:
            keep.add("no_reference")
        self.kept_statuses = sorted(keep)

    def fingerprint(self) -> dict[str, Any]:
        # The worker count changes the speed, never a verdict.
        return {"version": self.version, "options": {k: v for k, v in self.options.items() if k != "workers"}}

    def prepare(self, ctx: StageContext) -> None:
        self._workers = int(self.options["workers"] or ctx.workers or 1)
        self._side_path = ctx.out_dir / "verify.parquet"
        self._side_writer: pq.ParquetWriter | None = None
        self._timings = (ctx.out_dir / TIMINGS).open("w")
        self._timings.write("row_id,seconds\n")
        self._math = self._code = None
        self._unverified = 0
        ctx.stats["verify_workers"] = self._workers

    def _math_verifier(self):
        if self._math is None:
            from curate.verify.math import MathVerifier

            self._math = MathVerifier(
                workers=self._workers,
                timeout=self.options["math_timeout_s"],
                memory_mb=self.options["math_memory_mb"],
            )
        return self._math

    def _code_verifier(self):
        if self._code is None:
            from curate.verify.code import CodeVerifier

            self._code = CodeVerifier(
                workers=self._workers,
                isolation=self.options["code_isolation"],
                time_limit_s=self.options["code_time_limit_s"],
                memory_mb=self.options["code_memory_mb"],
            )
        return self._code

    def verdicts(self, batch: pl.DataFrame) -> tuple[list[str | None], list[Verdict]]:
        """(kind, verdict) for every row of the batch, in order."""
        rows = batch.select("response", "reference", "tests").to_dicts()
        kinds = [
            "code" if r["tests"] is not None else "math" if r["reference"] is not None else None for r in rows
        ]
        # a prompt (no response, or only whitespace) is a prompt whatever it has to check against
        prompt = [not (r["response"] or "").strip() for r in rows]
        verdicts: list[Verdict | None] = [NO_RESPONSE if p else None for p in prompt]
        math_rows = [i for i, k in enumerate(kinds) if k == "math" and not prompt[i]]
        code_rows = [i for i, k in enumerate(kinds) if k == "code" and not prompt[i]]
        if math_rows:
            pairs = [(rows[i]["response"], rows[i]["reference"]) for i in math_rows]
            for i, verdict in zip(math_rows, self._math_verifier().map(pairs), strict=True):
                verdicts[i] = verdict
        if code_rows:
            items = [{"response": rows[i]["response"], "tests": rows[i]["tests"]} for i in code_rows]
            for i, verdict in zip(code_rows, self._code_verifier().map(items), strict=True):
                verdicts[i] = verdict
        return kinds, [v if v is not None else NO_REFERENCE for v in verdicts]

    def process(self, batch: pl.DataFrame) -> pl.DataFrame:
        kinds, verdicts = self.verdicts(batch)
        batch = batch.with_columns(
            pl.Series("verify_kind", kinds, pl.String),
            pl.Series("verify_status", [v.status for v in verdicts], pl.String),
            pl.Series("verify_extracted", [v.extracted for v in verdicts], pl.String),
            pl.Series("verify_detail", [without_timings(v.detail) for v in verdicts], pl.String),
        )
        self._write_side(batch, [v.seconds for v in verdicts])
        if "no_reference" in self.kept_statuses:
            self._unverified += int((batch["verify_status"] == "no_reference").sum())
        return decide(
            batch,
            ~pl.col("verify_status").is_in(self.kept_statuses),
            pl.col("verify_status"),
            pl.col("verify_detail"),
        )

    def _write_side(self, batch: pl.DataFrame, seconds: list[float]) -> None:
        schema = SIDE_TABLE_SCHEMAS["verify"]
        side = batch.select(
            "id",
            "row_id",
            pl.col("verify_kind").alias("kind"),
            pl.col("verify_status").alias("status"),
            pl.col("verify_extracted").alias("extracted"),
            pl.col("verify_detail").alias("detail"),
            pl.lit(None, pl.Float64).alias("seconds"),  # the SQL view takes it from the timings table
        )
        table = pa.Table.from_pylist(side.to_dicts(), schema=schema)
        if self._side_writer is None:
            self._side_writer = pq.ParquetWriter(self._side_path, schema, compression="zstd")
        self._side_writer.write_table(table)
        self._timings.writelines(
            f"{row_id},{s}\n" for row_id, s in zip(batch["row_id"], seconds, strict=True)
        )

    def finish(self, ctx: StageContext) -> None:
        ctx.stats["flagged"] = {"no_reference": self._unverified} if self._unverified else {}
        if self._side_writer is not None:
            self._side_writer.close()
        self._timings.close()
        for verifier in (self._math, self._code):
            if verifier is not None:
                verifier.close()
