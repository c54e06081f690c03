"""Scoring a curation run against the corpus's truth: which planted defects each stage caught, and
what it dropped that it should not have."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from distill.demo.corpus.config import CATCHERS, DEFECTS


def score_curation(truth: list[dict[str, Any]], dropped: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Per defect type: planted, caught, recall, precision, and where its rows ended (`by_stage`).

    `dropped` maps the key of every dropped row to the stage that dropped it (kept rows are absent).
    A planted row is caught when one of its CATCHERS stages dropped it; for a duplicate, the copy
    surviving while that stage dropped the original instead counts too (which of two copies a
    dedup keeps is its choice). Precision of a defect type is caught / (caught + false drops),
    where a false drop is a row its catching stages dropped that carries no defect those stages
    are meant to catch (a clean row, most often).
    """
    by_key = {t["key"]: t for t in truth}
    expected_at = {
        stage: {d for d, stages in CATCHERS.items() if stage in stages}
        for stages in CATCHERS.values()
        for stage in stages
    }

    def caught_by(row: dict[str, Any]) -> str | None:
        stage = dropped.get(row["key"])
        if stage is None and row["of"] and dropped.get(row["of"]) in CATCHERS[row["defect"]]:
            return dropped[row["of"]]
        return stage

    # Originals dropped in place of their copy are the copy's catch, not a false drop.
    swapped = {row["of"] for row in truth if row["of"] and row["key"] not in dropped and row["of"] in dropped}
    report: dict[str, dict[str, Any]] = {}
    for defect in DEFECTS:
        planted = [row for row in truth if row["defect"] == defect]
        if not planted:
            continue
        ends = [caught_by(row) for row in planted]
        caught = sum(stage in CATCHERS[defect] for stage in ends)
        false_drops = sum(
            1
            for key, stage in dropped.items()
            if stage in CATCHERS[defect]
            and key not in swapped
            and by_key.get(key, {}).get("defect") not in expected_at[stage]
        )
        by_stage: dict[str, int] = {}
        for stage in ends:
            by_stage[stage or "kept"] = by_stage.get(stage or "kept", 0) + 1
        report[defect] = {
            "planted": len(planted),
            "caught": caught,
            "recall": caught / len(planted),
            "precision": caught / (caught + false_drops) if caught + false_drops else None,
            "by_stage": dict(sorted(by_stage.items())),
        }
    return report


def dropped_from_workspace(workspace: str | Path) -> dict[str, str]:
    """key -> stage of every row a curate workspace rejected (keys come from the corpus's `key` field)."""
    import sql

    con = sql.connect(workspace)
    rows = con.execute(
        "SELECT json_extract_string(meta, '$.key') AS key, stage FROM rejected WHERE key IS NOT NULL"
    ).fetchall()
    return dict(rows)


def read_truth(path: str | Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
