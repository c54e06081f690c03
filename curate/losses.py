"""Loud losses: a stage that drops (nearly) everything of an input says so, naming the option.

`loss_warnings` looks at one committed stage: for every input (`source`) whose rows this stage
dropped at least `WARN_SHARE` of for one reason, one warning line naming the input, the reason and
the config option that controls it. `empty_message` is the line a run ends with when a stage kept
no row at all (ingest: "N of N rows were malformed", with the commonest causes).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.workspace import StageDir, Workspace

WARN_SHARE = 0.9

# Where a reason is decided by one option, its name (else the warning lists the stage's options).
_VERIFY_KEEP = "stages: verify: {keep: [pass, ...]}"
REASON_OPTIONS: dict[tuple[str, str], str] = {
    ("verify", "no_reference"): "stages: verify: {require_reference: false}",
    **{
        ("verify", s): _VERIFY_KEEP
        for s in ("fail", "no_answer", "invalid_reference", "timeout", "error", "unsupported")
    },
    ("exact_dedup", "duplicate"): "stages: exact_dedup: {key: ...} or {enabled: false}",
    ("near_dedup", "near_duplicate"): "stages: near_dedup: {threshold: ...} or {enabled: false}",
    ("decontaminate", "contaminated"): "stages: decontaminate: {mode: flag}",
    ("quality", "think_missing"): "stages: quality: {think: optional}",
    ("quality", "no_final_answer"): "stages: quality: {require_final_answer: false}",
    ("quality", "too_short"): "stages: quality: {min_tokens: ...}",
    ("quality", "too_long"): "stages: quality: {max_tokens: ...}",
    ("quality", "truncated"): "stages: quality: {max_new_tokens: ...}",
    ("quality", "language_mix"): "stages: quality: {max_foreign_letters: ...}",
    ("shard", "domain_not_sharded"): "stages: shard: {domains: [...]}",
    ("select", "over_target"): "stages: select: {targets: ...}",
    ("select", "too_easy"): "stages: select: {easy_keep: 1.0}",
    ("select", "per_problem_cap"): "stages: select: {max_per_problem: null}",
}
# Reasons no option turns off: the row is unusable whatever the config says.
UNCONFIGURABLE = {"malformed", "prompt", "empty_response"}


def _source_counts(paths: list[Path]) -> Counter:
    """Rows per `source` over Parquet files (counted by Arrow, not row by row in Python)."""
    counts: Counter = Counter()
    for path in paths:
        if "source" not in pq.read_schema(path).names:
            counts[None] += pq.ParquetFile(path).metadata.num_rows
            continue
        for entry in pc.value_counts(pq.read_table(path, columns=["source"])["source"]).to_pylist():
            counts[entry["values"]] += entry["counts"]
    return counts


def loss_warnings(ws: Workspace, stage: StageDir, options: dict) -> list[str]:
    """Warnings for the inputs this committed stage dropped >= WARN_SHARE of for one reason."""
    rejected = ws.rejected_path(stage.index, stage.name)
    if not rejected.exists():
        return []
    table = pq.read_table(rejected, columns=["source", "reason"])
    by_source_reason = Counter(zip(table["source"].to_pylist(), table["reason"].to_pylist(), strict=True))
    dropped_by_source = Counter(table["source"].to_pylist())
    # Only a reason holding most of a source's dropped rows can hold most of its rows: read the
    # kept rows' sources (the costly part on a big workspace) only when there is such a candidate.
    candidates = {
        key: n
        for key, n in by_source_reason.items()
        if key[1] not in UNCONFIGURABLE and n >= WARN_SHARE * dropped_by_source[key[0]]
    }
    if not candidates:
        return []
    rows_in = _source_counts(stage.parts()) + dropped_by_source
    lines = []
    for (source, reason), dropped in sorted(candidates.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
        total = rows_in[source]
        if dropped < WARN_SHARE * total:
            continue
        option = REASON_OPTIONS.get((stage.name, reason)) or (
            f"stages: {stage.name}: {{...}} (options: {', '.join(sorted(options)) or 'none'}; or enabled: false)"
        )
        lines.append(
            f"warning: {stage.name} dropped {dropped:,} of {total:,} rows of input {source!r} "
            f"({100 * dropped / total:.0f}%) as `{reason}`; the option that controls it: {option}"
        )
    return lines


def empty_message(ws: Workspace, info: dict) -> str:
    """The line a run ends with when stage `info` kept none of its rows."""
    label = f"stage {info['index']:02d} {info['name']}"
    if info["rows_in"] == 0:
        return f"{label}: no input rows (the inputs hold no records)"
    reasons = sorted(info.get("by_reason", {}).items(), key=lambda kv: -kv[1])
    if info["name"] == "ingest" and [r for r, _ in reasons] == ["malformed"]:
        causes = _top_causes(ws.rejected_path(info["index"], info["name"]))
        return (
            f"{label}: {info['rows_in']:,} of {info['rows_in']:,} rows were malformed; top reasons: "
            + "; ".join(f"{cause} ({n:,})" for cause, n in causes)
            + " (check --format, or name the columns with --map, see docs/formats.md)"
        )
    said = ", ".join(f"{reason} {n:,}" for reason, n in reasons[:3])
    return (
        f"{label} kept none of its {info['rows_in']:,} rows ({said}); nothing would reach the shards. "
        f"see `distillery sql {ws.root} \"SELECT reason, detail FROM rejected WHERE stage = '{info['name']}'\"`"
    )


def _top_causes(rejected: Path, top: int = 3) -> list[tuple[str, int]]:
    """The commonest malformed causes: the detail without its `file:line: ` origin."""
    table = pq.read_table(rejected, columns=["origin", "detail"])
    origins = table["origin"].to_pylist()
    causes = Counter(
        detail[len(origin) + 2 :] if origin and detail and detail.startswith(origin) else (detail or "?")
        for origin, detail in zip(origins, table["detail"].to_pylist(), strict=True)
    )
    return causes.most_common(top)
