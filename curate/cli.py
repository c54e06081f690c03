"""`distillery curate INPUT... --out WS`."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "curate",
        help="ingest traces and run the curation pipeline into a workspace",
        description="Ingest teacher traces and run the curation stages into a workspace. "
        "Rerunning resumes after the last committed stage.",
    )
    parser.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="files, globs, folders or hub names (org/name[:split])"
    )
    parser.add_argument("--out", required=True, metavar="WS", help="workspace folder")
    parser.add_argument("--config", help="curate.yaml")
    parser.add_argument("--workers", type=int, help="worker processes (default: config, else 1)")
    parser.add_argument("--format", help="input format for every input (default: detected per file)")
    parser.add_argument("--source", help="source name for every row (default: each input's name)")
    parser.add_argument(
        "--map",
        metavar="TARGET=FIELD,...",
        help="rename columns before format detection, e.g. problem=Question,reference=Answer",
    )
    parser.add_argument(
        "--split", help="split of DatasetDict folders and hub names (default train; all: every split)"
    )
    parser.add_argument("--until", metavar="STAGE", help="stop after this stage")
    parser.add_argument(
        "--engine",
        choices=("local", "ray"),
        help="where the stages run: this machine, or a Ray cluster with the same output "
        "(default: config, else local; docs/ray.md)",
    )
    parser.add_argument(
        "--ray-address", metavar="ADDR", help="Ray cluster to join (default: start one for the run)"
    )
    parser.add_argument(
        "--unsafe-no-isolation",
        action="store_true",
        help="verify code without a sandbox where no isolation is available (trusted code only)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--force", action="store_true", help="write into a non-empty --out that is not a workspace"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from curate.errors import EmptyResult, user_error_from
    from curate.pipeline import curate, load_config
    from curate.stages.ingest import parse_map

    config = load_config(args.config)
    for key in ("format", "source", "split"):
        if getattr(args, key):
            config[key] = getattr(args, key)
    if args.map:
        config["map"] = parse_map(args.map)
    if args.unsafe_no_isolation:
        stages = config.setdefault("stages", {}) or {}
        verify = stages.get("verify") or {}
        config["stages"] = {**stages, "verify": {**verify, "code_isolation": "none"}}
    try:
        results = curate(
            args.inputs,
            args.out,
            config,
            workers=args.workers,
            progress=not args.quiet,
            until=args.until,
            force=args.force,
            engine=args.engine,
            ray_address=args.ray_address,
        )
    except EmptyResult as empty:
        print(summary_table(empty.results))
        raise
    except Exception as error:
        # OS errors (disk full, permissions, a vanished input) are the user's to fix: one line.
        user_error = user_error_from(error, where=args.out)
        if user_error is None:
            raise
        raise user_error from None
    print(summary_table(results))
    print(f"\nworkspace: {args.out}   report: {args.out}/report/index.html")
    print(f'inspect:   distillery sql {args.out} "SELECT * FROM funnel"')
    return 0


def summary_table(results: list[dict]) -> str:
    rows = [("stage", "rows in", "kept", "dropped", "top reasons", "seconds")]
    for info in results:
        reasons = sorted(info.get("by_reason", {}).items(), key=lambda kv: -kv[1])[:3]
        flagged = ", ".join(f"{r} {n:,}" for r, n in sorted(info.get("flagged", {}).items()))
        rows.append(
            (
                f"{info['index']:02d} {info['name']}",
                f"{info['rows_in']:,}",
                f"{info['rows_out']:,}",
                f"{info['dropped']:,}",
                "; ".join(
                    filter(
                        None,
                        [", ".join(f"{r} {n:,}" for r, n in reasons), flagged and f"kept flagged: {flagged}"],
                    )
                )
                or "-",
                "reused" if info.get("reused") else f"{info['seconds']:.1f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.ljust(w) if i in (0, 4) else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
