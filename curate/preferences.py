"""Preference pairs for REDI (Reinforcement Distillation): each problem's passing trace against a
failed one, from a curated workspace and nothing else (`distillery export WS --to redi --out DIR`).

    DIR/<domain>/{train,val}-NNNNN.parquet   one pair a row (PAIR_COLUMNS)
    DIR/manifest.json                        the pairing rule, and pairs, problems and skips per split

Candidates are the `preference_candidates` view (sql/views/): a trace in the shards with verify
status `pass` against a trace of the same problem that verify dropped with status `fail` (never
`no_answer`, `timeout`, `error`, a malformed row or a row another stage dropped). The pairing rule
(PairRule), per domain and problem:

- length filters first: a trace whose assistant turn is over `max_chars` characters or `max_tokens`
  tokens is not used, on either side;
- the negatives are taken in a seeded order (a hash of seed, problem and row id), at most
  `negatives_per_problem` of them (default 1); each is paired with the passing trace, in a seeded
  order too, that has been used least so far and whose length is within `max_ratio` of its own
  (longer / shorter, in characters); a negative with no such partner is skipped.

A pair's split is its problem's (the shards split train and val by problem), so no val problem
trains. Both sides are written as conversations exactly as the shard stage writes `messages`
(same system prompt, same `<think>` framing), so a pair trains on what SFT trained on.

It lives in curate, beside the workspace it reads (curate imports nothing of distill); the REDI
objective (distill/sft/redi.py) reads only these Parquet files.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import polars as pl

from curate.errors import CurateError

PAIRS_PER_SHARD = 10_000
MANIFEST = "manifest.json"
PAIR_COLUMNS = (
    "pair_id",
    "domain",
    "split",
    "problem_id",
    "chosen_id",
    "chosen_row_id",
    "chosen_status",
    "rejected_id",
    "rejected_row_id",
    "rejected_status",
    "chosen",
    "rejected",
    "chosen_chars",
    "rejected_chars",
    "chosen_tokens",
    "rejected_tokens",
)


@dataclass(frozen=True)
class PairRule:
    """How pairs are picked from the candidates (module docstring)."""

    negatives_per_problem: int = 1
    max_chars: int | None = None
    max_tokens: int | None = None  # counted with `tokenizer` (default: the shards' token counter)
    max_ratio: float | None = None  # longer / shorter assistant turn, in characters
    seed: int = 0
    tokenizer: str | None = None

    def __post_init__(self):
        checks = [
            (self.negatives_per_problem >= 1, "negatives per problem must be >= 1"),
            (self.max_chars is None or self.max_chars > 0, "max chars must be > 0"),
            (self.max_tokens is None or self.max_tokens > 0, "max tokens must be > 0"),
            (self.max_ratio is None or self.max_ratio >= 1, "max ratio must be >= 1 (longer / shorter)"),
        ]
        for ok, message in checks:
            if not ok:
                raise CurateError(f"preference pairs: {message}")


def candidates(workspace: str | Path, domains: list[str] | None = None) -> pl.DataFrame:
    """Every candidate pair of the workspace (the `preference_candidates` view) with both sides'
    conversations as the shard stage writes them, and their assistant turns' lengths."""
    from curate.catalog import connect
    from curate.stages.shard import messages_expr

    root = Path(workspace)
    manifest = _shards_manifest(root)
    con = connect(root)
    frame = con.sql(
        """SELECT c.*, k.problem, k.reasoning AS c_reasoning, k.response AS c_response,
                  r.reasoning AS r_reasoning, r.response AS r_response
           FROM preference_candidates c
           JOIN kept k ON k.row_id = c.chosen_row_id
           JOIN rejected r ON r.row_id = c.rejected_row_id AND r.stage = 'verify'
           ORDER BY c.domain, c.problem_id, c.chosen_row_id, c.rejected_row_id"""
    ).pl()
    if domains is not None:
        frame = frame.filter(pl.col("domain").is_in(domains))
    system = manifest.get("options", {}).get("system")
    conversation = messages_expr(system)
    sides = {
        side: frame.select(
            "problem", pl.col(f"{p}_reasoning").alias("reasoning"), pl.col(f"{p}_response").alias("response")
        )
        .select(conversation.alias(side))
        .to_series()
        for side, p in (("chosen", "c"), ("rejected", "r"))
    }
    frame = frame.with_columns(*sides.values())
    return frame.with_columns(
        _assistant(pl.col("chosen")).str.len_chars().cast(pl.Int64).alias("chosen_chars"),
        _assistant(pl.col("rejected")).str.len_chars().cast(pl.Int64).alias("rejected_chars"),
    ).drop("problem", "c_reasoning", "c_response", "r_reasoning", "r_response")


def _assistant(messages: pl.Expr) -> pl.Expr:
    return messages.list.last().struct.field("content")


def pick_pairs(frame: pl.DataFrame, rule: PairRule) -> tuple[list[dict[str, Any]], Counter]:
    """The pairs the rule picks from `candidates(...)` rows, and what it skipped (by reason, in
    problems): `too_long` (no side within the length limits), `ratio` (no partner within max_ratio)."""
    from curate.rows import seeded_key

    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in frame.to_dicts():
        groups[(row["domain"], row["problem_id"])].append(row)
    pairs: list[dict[str, Any]] = []
    skipped: Counter = Counter()
    for (_, problem), rows in sorted(groups.items()):
        sides = {}
        for side in ("chosen", "rejected"):
            unique = {r[f"{side}_row_id"]: r for r in rows}
            fits = [r for r in unique.values() if _fits(r, side, rule)]
            keys = seeded_key([f"{problem}:{side}:{r[f'{side}_row_id']}" for r in fits], rule.seed)
            sides[side] = [r for _, r in sorted(zip(keys, fits, strict=True), key=lambda kr: kr[0])]
        if not sides["chosen"] or not sides["rejected"]:
            skipped["too_long"] += 1
            continue
        uses: Counter = Counter()
        picked = []
        for negative in sides["rejected"]:
            if len(picked) == rule.negatives_per_problem:
                break
            partners = [
                c for c in sides["chosen"] if _ratio_ok(c["chosen_chars"], negative["rejected_chars"], rule)
            ]
            if not partners:
                continue
            # least used first, then the seeded order (min keeps the first of equals)
            positive = min(partners, key=lambda c: uses[c["chosen_row_id"]])
            uses[positive["chosen_row_id"]] += 1
            picked.append(_pair(positive, negative))
        if not picked:
            skipped["ratio"] += 1
        pairs += picked
    return pairs, skipped


def _fits(row: dict, side: str, rule: PairRule) -> bool:
    if rule.max_chars is not None and row[f"{side}_chars"] > rule.max_chars:
        return False
    if rule.max_tokens is None:
        return True
    tokens = row.get(f"{side}_tokens")
    if tokens is None:
        raise CurateError("preference pairs: max tokens needs token counts (write_preferences makes them)")
    return tokens <= rule.max_tokens


def _ratio_ok(a: int, b: int, rule: PairRule) -> bool:
    return rule.max_ratio is None or max(a, b) <= rule.max_ratio * max(1, min(a, b))


def _pair(positive: dict, negative: dict) -> dict[str, Any]:
    pair = {c: positive[c] for c in ("domain", "split", "problem_id")}
    for side, row in (("chosen", positive), ("rejected", negative)):
        for column in ("id", "row_id", "status", "chars", "tokens"):
            pair[f"{side}_{column}"] = row.get(f"{side}_{column}")
        pair[side] = row[side]
    key = f"{pair['chosen_row_id']}:{pair['rejected_row_id']}".encode()
    pair["pair_id"] = hashlib.blake2b(key, digest_size=8).hexdigest()
    return {c: pair[c] for c in PAIR_COLUMNS}


def write_preferences(
    workspace: str | Path,
    out: str | Path,
    domains: list[str] | None = None,
    rule: PairRule | None = None,
) -> list[dict[str, Any]]:
    """Pick the pairs of `workspace` by `rule` and write them to `out` (module docstring); returns
    one entry per file written (domain, split, rows, file)."""
    from curate.rows import count_tokens, load_tokenizer
    from curate.workspace import write_json_atomic

    rule = rule or PairRule()
    root, out = Path(workspace), Path(out)
    manifest = _shards_manifest(root)
    frame = candidates(root, domains)
    if rule.max_tokens is not None or rule.tokenizer is not None:
        counter = rule.tokenizer or manifest.get("token_counter")
        tokenizer = load_tokenizer(counter) if counter and counter != "whitespace" else None
        frame = frame.with_columns(
            pl.Series(
                "chosen_tokens",
                count_tokens(frame.select(_assistant(pl.col("chosen"))).to_series().to_list(), tokenizer),
            ),
            pl.Series(
                "rejected_tokens",
                count_tokens(frame.select(_assistant(pl.col("rejected"))).to_series().to_list(), tokenizer),
            ),
        )
    pairs, skipped = pick_pairs(frame, rule)
    chosen = sorted(manifest["domains"]) if domains is None else domains
    summary: dict[str, Any] = {"rule": asdict(rule), "skipped_problems": dict(skipped), "domains": {}}
    written = []
    for domain in chosen:
        for split, info in sorted(manifest["domains"].get(domain, {}).items()):
            rows = [p for p in pairs if p["domain"] == domain and p["split"] == split]
            folder = out / domain
            folder.mkdir(parents=True, exist_ok=True)
            for stale in folder.glob(f"{split}-*.parquet"):
                stale.unlink()
            files = []
            for n, start in enumerate(range(0, len(rows), PAIRS_PER_SHARD)):
                path = folder / f"{split}-{n:05d}.parquet"
                part = rows[start : start + PAIRS_PER_SHARD]
                pl.DataFrame(part, schema=_schema(frame)).write_parquet(path)
                files.append(path.name)
                written.append({"domain": domain, "split": split, "rows": len(part), "file": str(path)})
            summary["domains"].setdefault(domain, {})[split] = {
                "pairs": len(rows),
                "problems": len({p["problem_id"] for p in rows}),
                "problems_in_shards": info["problems"],
                "files": files,
            }
    write_json_atomic(out / MANIFEST, summary)
    return written


def _schema(frame: pl.DataFrame) -> dict[str, pl.DataType]:
    types = dict(frame.schema)
    fixed = {"pair_id": pl.String, "chosen_tokens": pl.Int64, "rejected_tokens": pl.Int64}
    return {c: fixed.get(c) or types[c] for c in PAIR_COLUMNS}


def _shards_manifest(root: Path) -> dict[str, Any]:
    path = root / "shards" / "manifest.json"
    if not path.exists():
        raise CurateError(
            f"{root}: no shards ({path} is missing); run `distillery curate` with the shard stage"
        )
    return json.loads(path.read_text())
