"""`distillery export WS --to llamafactory|trl|jsonl|hf|prompt-completion|redi --out DIR`: the shards in the
layout a trainer loads.

    jsonl          DIR/<domain>/{train,val}.jsonl, one {"id", "problem_id", "domain", "messages"} a line
    trl            DIR/<domain>/{train,test}-NNNNN-of-NNNNN.parquet: `load_dataset(DIR/<domain>)` gives the
                   `train` and `test` splits TRL's scripts read by default, with a `messages` column
    llamafactory   DIR/<name>_<domain>_{train,val}.jsonl and DIR/dataset_info.json registering them in
                   sharegpt format with OpenAI-style role/content tags: `dataset_dir: DIR`,
                   `dataset: <name>_<domain>`, `eval_dataset: <name>_<domain>_val`
    hf             DIR/<domain>/: a `datasets` DatasetDict (`save_to_disk`) with `train` and `validation`
                   splits, for `load_from_disk(DIR/<domain>)`; with --push-to-hub ORG/NAME also pushed
                   (one config per domain) when a Hugging Face token and the network are there
    prompt-completion  DIR/<domain>/{train,val}.jsonl, one {"id", "problem_id", "domain", "prompt",
                   "completion"} a line: the conversation before the last assistant turn, and that turn
                   (TRL's conversational prompt-completion layout)
    redi           DIR/<domain>/{train,val}-NNNNN.parquet: preference pairs for REDI, each problem's passing
                   trace against a failed one from the ledger (curate/preferences.py: the pairing rule,
                   --negatives-per-problem, --max-chars, --max-tokens, --max-ratio, --seed)

A non-empty --out that is not an earlier export (nor, for llamafactory, a LLaMA-Factory data folder)
is refused unless --force.

Only argparse is imported at module level: the CLI mounts `register` and must start fast.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

FORMATS = ("llamafactory", "trl", "jsonl", "hf", "prompt-completion", "redi")
EXPORT_MARKER = ".distillery-export.json"  # says a folder is an earlier export (rewritten without --force)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "export",
        help="write a workspace's shards in the layout a trainer expects",
        description="Export WS/shards for LLaMA-Factory (dataset_info.json + JSON lines), TRL (a datasets "
        "folder per domain with train/test splits) or plain JSON lines.",
    )
    parser.add_argument("workspace", metavar="WS", help="workspace written by `distillery curate`")
    parser.add_argument("--to", required=True, choices=FORMATS, help="target layout")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument(
        "--domains",
        nargs="+",
        metavar="DOMAIN",
        help="domains to export, space- or comma-separated (default: all)",
    )
    parser.add_argument(
        "--name", default="distillery", help="dataset name prefix for llamafactory (default: distillery)"
    )
    parser.add_argument(
        "--push-to-hub",
        metavar="ORG/NAME",
        help="with --to hf: also push the DatasetDicts to this hub dataset",
    )
    pairs = parser.add_argument_group("preference pairs (--to redi; docs/sft.md, REDI)")
    pairs.add_argument(
        "--negatives-per-problem", type=int, default=1, metavar="K", help="failed traces paired per problem"
    )
    pairs.add_argument("--max-chars", type=int, metavar="N", help="leave out traces longer than N characters")
    pairs.add_argument(
        "--max-tokens", type=int, metavar="N", help="leave out traces longer than N tokens (see --tokenizer)"
    )
    pairs.add_argument(
        "--max-ratio", type=float, metavar="R", help="pair only traces within R x of each other's length"
    )
    pairs.add_argument("--seed", type=int, default=0, help="seed of the choice of pairs")
    pairs.add_argument(
        "--tokenizer",
        metavar="NAME",
        help="count --max-tokens with this tokenizer (default: the shards' token counter, else words)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--force", action="store_true", help="write into a non-empty --out that is not an earlier export"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from curate.errors import user_error_from

    domains = (
        [d.strip() for item in args.domains for d in item.split(",") if d.strip()] if args.domains else None
    )
    try:
        written = export(
            args.workspace,
            args.to,
            args.out,
            domains=domains,
            name=args.name,
            progress=not args.quiet,
            force=args.force,
            push_to_hub=args.push_to_hub,
            pairs=_pair_rule(args),
        )
    except Exception as error:  # OS errors (disk full, permissions) are one line, like curate's
        user_error = user_error_from(error, where=args.out)
        if user_error is None:
            raise
        raise user_error from None
    rows = [("domain", "split", "rows", "file")] + [
        (w["domain"], w["split"], f"{w['rows']:,}", w["file"]) for w in written
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for k, row in enumerate(rows):
        print(
            "  ".join(
                c.rjust(w) if i == 2 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if k == 0:
            print("  ".join("-" * w for w in widths))
    print(f"\nexported {sum(w['rows'] for w in written):,} rows to {args.out} ({args.to})")
    return 0


def _pair_rule(args: argparse.Namespace) -> Any:
    """The REDI pairing rule of the flags; None unless --to redi (the flags are refused elsewhere)."""
    from curate.errors import CurateError
    from curate.preferences import PairRule

    names = ("negatives_per_problem", "max_chars", "max_tokens", "max_ratio", "seed", "tokenizer")
    given = {n: getattr(args, n) for n in names}
    if args.to != "redi":
        changed = [n for n in names if given[n] not in (None, PairRule.__dataclass_fields__[n].default)]
        if changed:
            flag = "--" + changed[0].replace("_", "-")
            raise CurateError(f"{flag} is an option of --to redi (preference pairs), not of --to {args.to}")
        return None
    return PairRule(**given)


def export(
    workspace: str | Path,
    to: str,
    out: str | Path,
    domains: list[str] | None = None,
    name: str = "distillery",
    progress: bool = True,
    force: bool = False,
    push_to_hub: str | None = None,
    pairs: Any = None,
) -> list[dict[str, Any]]:
    """Write the workspace's shards to `out` in layout `to`; returns one entry per file written.
    `out` must be new, empty or an earlier export (else CurateError, unless `force`). `pairs`: the
    curate.preferences.PairRule of `to="redi"` (default: its defaults)."""
    from tqdm import tqdm

    from curate.errors import CurateError, did_you_mean
    from curate.workspace import refuse_foreign

    if to not in FORMATS:
        raise CurateError(
            f"unknown export format {to!r}{did_you_mean(to, FORMATS)}; expected one of {', '.join(FORMATS)}"
        )
    if push_to_hub and to != "hf":
        raise CurateError("--push-to-hub needs --to hf")
    root = Path(workspace)
    manifest_path = root / "shards" / "manifest.json"
    if not manifest_path.exists():
        raise CurateError(
            f"{root}: no shards ({manifest_path} is missing); run `distillery curate` with the shard stage"
        )
    manifest = json.loads(manifest_path.read_text())
    available = manifest["domains"]
    chosen = sorted(available) if domains is None else domains
    unknown = [d for d in chosen if d not in available]
    if unknown:
        raise CurateError(
            f"no shards for domain(s) {', '.join(unknown)}{did_you_mean(unknown[0], available)} in {root} "
            f"(have: {', '.join(sorted(available))})"
        )
    out = Path(out)
    # A LLaMA-Factory data folder (dataset_info.json) is meant to be added to.
    ours = (EXPORT_MARKER, "dataset_info.json") if to == "llamafactory" else (EXPORT_MARKER,)
    refuse_foreign(out, force, what="export folder", markers=ours)
    out.mkdir(parents=True, exist_ok=True)
    if to == "redi":
        from curate.preferences import write_preferences

        written = write_preferences(root, out, chosen, pairs)
        (out / EXPORT_MARKER).write_text(json.dumps({"workspace": str(root), "to": to}) + "\n")
        return written
    jobs = [(d, split, info) for d in chosen for split, info in sorted(available[d].items())]
    written: list[dict[str, Any]] = []
    for domain, split, info in tqdm(jobs, desc="export", unit="split", disable=not progress, leave=False):
        shards = [root / "shards" / domain / f["file"] for f in info["files"]]
        if to == "trl":
            written += _copy_parquet(shards, out / domain, "test" if split == "val" else split, domain, split)
        elif to == "hf":
            continue  # one DatasetDict per domain, written below
        elif to == "jsonl":
            written.append(_write_jsonl(shards, out / domain / f"{split}.jsonl", domain, split))
        elif to == "prompt-completion":
            path = out / domain / f"{split}.jsonl"
            written.append(_write_jsonl(shards, path, domain, split, prompt_completion))
        else:
            written.append(_write_jsonl(shards, out / f"{name}_{domain}_{split}.jsonl", domain, split))
    if to == "hf":
        for domain in chosen:
            splits = {
                s: [root / "shards" / domain / f["file"] for f in info["files"]]
                for s, info in available[domain].items()
            }
            written += _save_dataset_dict(splits, out / domain, domain, progress)
    if to == "llamafactory":
        _write_dataset_info(out, written, name)
    (out / EXPORT_MARKER).write_text(json.dumps({"workspace": str(root), "to": to}) + "\n")
    if push_to_hub:
        _push(out, chosen, push_to_hub)
    return written


def prompt_completion(record: dict[str, Any]) -> dict[str, Any]:
    """A shard record as prompt (every turn before the last assistant turn) and completion (that turn)."""
    messages = record["messages"]
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    rest = {k: v for k, v in record.items() if k != "messages"}
    return {**rest, "prompt": messages[:last], "completion": messages[last : last + 1]}


HF_SPLITS = {"train": "train", "val": "validation"}  # shard split -> the DatasetDict's split name


def _save_dataset_dict(
    splits: dict[str, list[Path]], folder: Path, domain: str, progress: bool
) -> list[dict[str, Any]]:
    """`save_to_disk` one domain's splits as a DatasetDict (train, validation)."""
    import datasets

    if not progress:
        datasets.disable_progress_bars()
    cache = folder.parent / ".hf-cache"  # from_parquet's Arrow files; gone once saved
    dataset = datasets.DatasetDict(
        {
            HF_SPLITS.get(split, split): datasets.Dataset.from_parquet(
                [str(p) for p in files], cache_dir=str(cache)
            )
            for split, files in sorted(splits.items())
        }
    )
    if folder.exists():
        shutil.rmtree(folder)  # save_to_disk refuses to replace a dataset in place
    dataset.save_to_disk(str(folder))
    shutil.rmtree(cache, ignore_errors=True)
    return [
        {"domain": domain, "split": split, "rows": part.num_rows, "file": str(folder)}
        for split, part in dataset.items()
    ]


def _push(out: Path, domains: list[str], repo: str) -> None:
    """Push each saved domain to the hub dataset `repo` (one config per domain), or say why not."""
    import datasets
    import huggingface_hub

    from curate.errors import CurateError

    later = f"push later with datasets.load_from_disk('{out}/<domain>').push_to_hub({repo!r}, config_name='<domain>')"
    if not huggingface_hub.get_token():
        raise CurateError(
            f"--push-to-hub {repo}: not pushed, no Hugging Face token (set HF_TOKEN or run `hf auth login`); "
            f"the DatasetDicts are saved in {out}; {later}"
        )
    for domain in domains:
        try:
            datasets.load_from_disk(str(out / domain)).push_to_hub(repo, config_name=domain)
        except (OSError, huggingface_hub.errors.HfHubHTTPError) as error:
            raise CurateError(
                f"--push-to-hub {repo}: not pushed, the hub cannot be reached ({error}); "
                f"the DatasetDicts are saved in {out}; {later}"
            ) from None


def _write_jsonl(
    shards: list[Path], path: Path, domain: str, split: str, layout: Any = None
) -> dict[str, Any]:
    """One JSON object a line, each shard record as it is or as `layout(record)`."""
    import orjson
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as handle:
        for shard in shards:
            for record in pq.read_table(shard).to_pylist():
                handle.write(orjson.dumps(layout(record) if layout else record) + b"\n")
                rows += 1
    tmp.replace(path)
    return {"domain": domain, "split": split, "rows": rows, "file": str(path)}


def _copy_parquet(
    shards: list[Path], folder: Path, split_name: str, domain: str, split: str
) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(f"{split_name}-*.parquet"):
        stale.unlink()
    written = []
    for i, shard in enumerate(shards):
        target = folder / f"{split_name}-{i:05d}-of-{len(shards):05d}.parquet"
        shutil.copyfile(shard, target)
        written.append(
            {
                "domain": domain,
                "split": split,
                "rows": pq.ParquetFile(target).metadata.num_rows,
                "file": str(target),
            }
        )
    return written


def _write_dataset_info(out: Path, written: list[dict[str, Any]], name: str) -> None:
    """LLaMA-Factory's dataset registry: sharegpt formatting with OpenAI-style message tags."""
    info_path = out / "dataset_info.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    for entry in written:
        key = f"{name}_{entry['domain']}" + ("_val" if entry["split"] == "val" else "")
        info[key] = {
            "file_name": Path(entry["file"]).name,
            "formatting": "sharegpt",
            "columns": {"messages": "messages"},
            "tags": {
                "role_tag": "role",
                "content_tag": "content",
                "user_tag": "user",
                "assistant_tag": "assistant",
                "system_tag": "system",
            },
        }
    info_path.write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n")
