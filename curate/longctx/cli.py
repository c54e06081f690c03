"""`distillery longattn --input F --model DIR --out G`: LongAttn scores for a file of documents.

Reads JSON lines (or any file `distillery curate` reads), scores each record's text field with one
layer of a local causal LM, and writes the records back as JSON lines, in order, with
longattn_tokens, longattn_windows, longattn_ds, longattn_du and longattn_score (LDS, normalised
within each category) added; `--keep-fraction` also adds longattn_keep (top fraction per category).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "longattn",
        help="score documents' long-range dependencies with one attention layer (LongAttn)",
        description="LongAttn scoring: DS (attention mass on tokens at least k back), DU (minus its "
        "variance) and LDS = norm(DS) + alpha * norm(DU) per document, from one layer of a local causal LM.",
    )
    parser.add_argument(
        "--input", required=True, metavar="F", help="JSON lines (or Parquet, CSV...) of documents"
    )
    parser.add_argument("--model", required=True, metavar="DIR", help="local causal LM folder (HF format)")
    parser.add_argument("--out", required=True, metavar="G", help="output JSON lines")
    parser.add_argument(
        "--window", type=int, default=32768, metavar="L", help="tokens per window (default 32768)"
    )
    parser.add_argument("--k", type=int, metavar="K", help="long-range distance in tokens (default L/4)")
    parser.add_argument(
        "--alpha", type=float, default=0.5, metavar="A", help="weight of DU in LDS (default 0.5)"
    )
    parser.add_argument(
        "--layer", type=int, default=0, metavar="N", help="attention layer to read (default 0)"
    )
    parser.add_argument(
        "--normalize",
        choices=("zscore", "minmax"),
        default="zscore",
        help="paper: zscore; released code: minmax",
    )
    parser.add_argument(
        "--text-field", default="text", help="record field holding the document (default text)"
    )
    parser.add_argument(
        "--category-field", help="record field naming the category (normalise and select within it)"
    )
    parser.add_argument(
        "--keep-fraction", type=float, help="add longattn_keep: the top fraction of each category"
    )
    parser.add_argument(
        "--chunk", type=int, default=512, help="queries per attention block (memory ~ heads x chunk x L)"
    )
    parser.add_argument("--min-tokens", type=int, help="shortest document scored (default: one window)")
    parser.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1...)")
    parser.add_argument("--no-bos", action="store_true", help="do not start windows with the tokenizer's BOS")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def _records(path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(location, record) of every record of an input file, in order; bad lines are errors here."""
    from curate.errors import InputError
    from curate.readers import iter_chunks, parse_line, resolve_inputs

    for inp in resolve_inputs([path]):
        for chunk in iter_chunks(inp):
            for line, raw in chunk.lines:
                record, error, _ = parse_line(raw)
                if error:
                    raise InputError(chunk.path, error, line=line)
                yield f"{chunk.path}:{line}", record  # type: ignore[misc]
            for index, record in chunk.records:
                if not isinstance(record, dict):
                    raise InputError(
                        chunk.path, f"expected an object, got {type(record).__name__}", line=index
                    )
                yield f"{chunk.path}#{index}", record


def _field(record: dict[str, Any], name: str, location: str, required: bool) -> str | None:
    from curate.errors import CurateError

    value = record.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        found = "missing" if value is None else f"a {type(value).__name__}"
        raise CurateError(f"{location} (field {name!r}): expected a string, found {found}")
    return value


def run(args: argparse.Namespace) -> int:
    import time

    import orjson
    from tqdm import tqdm

    from curate.longctx.longattn import LongAttnScorer, keep_count, rank_documents

    keep_count(1, args.keep_fraction if args.keep_fraction is not None else 1.0)
    scorer = LongAttnScorer(
        args.model,
        window=args.window,
        k=args.k,
        layer=args.layer,
        chunk=args.chunk,
        min_tokens=args.min_tokens,
        dtype=args.dtype,
        device=args.device,
        bos=not args.no_bos,
    )
    # Two passes over the input: scores first (normalisation needs all of them), then the records,
    # so no document text is held in memory beyond the one being scored.
    scores, categories = [], []
    started = time.time()
    for location, record in tqdm(_records(args.input), desc="longattn", unit="doc", disable=args.quiet):
        scores.append(scorer.score(_field(record, args.text_field, location, required=True)))
        if args.category_field:
            categories.append(_field(record, args.category_field, location, required=False))
        else:
            categories.append(None)
    seconds = time.time() - started
    fraction = args.keep_fraction if args.keep_fraction is not None else 1.0
    ranked = rank_documents(scores, categories, args.alpha, args.normalize, fraction)
    with open(args.out, "wb") as out:
        for (_, record), score, rank in zip(_records(args.input), scores, ranked, strict=True):
            record.update(
                longattn_tokens=score.tokens,
                longattn_windows=score.windows,
                longattn_ds=score.ds,
                longattn_du=score.du,
                longattn_score=rank.score if rank else None,
            )
            if args.keep_fraction is not None:
                record["longattn_keep"] = bool(rank and rank.keep)
            out.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS))
    print(summary_table(scores, categories, ranked, seconds, args.keep_fraction is not None))
    print(f"\nwrote {len(scores):,} records to {args.out}")
    return 0


def summary_table(scores: list, categories: list, ranked: list, seconds: float, selecting: bool) -> str:
    """Per category: documents, scored, kept (when selecting), mean DS and DU; then throughput."""
    rows = [("category", "docs", "scored", "kept", "mean DS", "mean DU")]
    for category in sorted(set(categories), key=lambda c: (c is not None, c or "")):
        members = [i for i, c in enumerate(categories) if c == category]
        scored = [scores[i] for i in members if ranked[i] is not None]
        kept = sum(bool(ranked[i] and ranked[i].keep) for i in members) if selecting else None
        rows.append(
            (
                "(all)" if category is None else str(category),
                f"{len(members):,}",
                f"{len(scored):,}",
                "-" if kept is None else f"{kept:,}",
                f"{sum(s.ds for s in scored) / len(scored):.4f}" if scored else "-",
                f"{sum(s.du for s in scored) / len(scored):.5f}" if scored else "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    tokens = sum(s.scored_tokens for s in scores)
    rate = f"{tokens / seconds:,.0f} tokens/s" if seconds > 0 else "-"
    lines.append(f"\n{tokens:,} tokens scored in {seconds:.1f} s ({rate})")
    return "\n".join(lines)
