"""Dedup benchmark: distillery's exact_dedup + near_dedup against datatrove's MinHash pipeline.

    .venv-bench/bin/python bench/dedup_bench.py                 # quality (14k docs) + speed (110k docs)
    .venv-bench/bin/python bench/dedup_bench.py --only quality  # precision/recall only
    .venv-bench/bin/python bench/dedup_bench.py --only speed --speed-docs 110000

The corpus is labelled: real problems from ../shared/data/problems/*.jsonl and math500.jsonl, plus
copies with the perturbations seen in real datasets (spacing, \\dfrac/\\frac and \\left( swaps,
appended instructions, "Problem:" prefixes, unicode quotes and spaces, a dropped last sentence),
each labelled a duplicate of its original, and copies with one changed number, labelled distinct.
Base problems that share a 13-word n-gram or a 60-character prefix with an earlier one are left
out: they are natural near-duplicates (or distinct problems on one template) whose label is unknown.

Scoring: for every true group of size g, g - 1 removals are expected; removing all copies of a
problem counts one false positive. precision = true removals / removals, recall = true removals /
expected removals.

Both tools read the same JSONL and write the surviving documents; one run each, same machine,
same shingles (word n-grams) and hash count. datatrove tokenises words with its English default,
spaCy's blank('en') tokenizer (the `bench` extra installs spaCy; `make bench` sets it up); without
spaCy the bench passes a whitespace tokenizer in its place, several times faster, and both the
first line and the ratio line say which one ran. docs/s counts the whole run (read, hash, bucket,
cluster, write); CPU seconds are those of the whole process tree (a loaded machine changes them
far less than wall time). Peak RSS is the peak over the process tree, sampled every 50 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere: import this checkout's packages

from bench.common import run_measured  # noqa: E402

DATA = REPO / ".." / "shared" / "data"
BASE_FILES = ("problems/math_train.jsonl", "problems/aime_train.jsonl", "math/math500.jsonl")

SUFFIXES = (
    "\nPlease reason step by step, and put your final answer within \\boxed{}.",
    " Let's think step by step and output the final answer within \\boxed{}.",
    "\n\nReturn your final response within \\boxed{}.",
    " Please put the final answer in \\boxed{}.",
    "\nSolve the problem and put the answer in a box.",
)
PREFIXES = ("Problem: ", "Question: ", "Problem 3. ", "Q: ", "Solve the following math problem: ")
QUOTES = {'"': ("\u201c", "\u201d"), "'": ("\u2019", "\u2019")}


# ---------------------------------------------------------------------------------------------
# perturbations: each returns the new text, or None when it does not apply to this problem


def spacing(text: str, rng: random.Random) -> str | None:
    text = re.sub(
        r" ", lambda m: "  " if rng.random() < 0.15 else ("\n" if rng.random() < 0.03 else " "), text
    )
    text = re.sub(r"\s*([=+<>])\s*", lambda m: f" {m.group(1)} " if rng.random() < 0.5 else m.group(1), text)
    text = re.sub(r",(?=\S)", lambda m: ", " if rng.random() < 0.5 else ",", text)
    return text + rng.choice(["", " ", "\n", "  \n"])


def latex_variant(text: str, rng: random.Random) -> str | None:
    if "\\dfrac" in text:
        return text.replace("\\dfrac", "\\frac")
    if "\\frac" in text:
        return text.replace("\\frac", "\\dfrac")
    if re.search(r"\$[^$]*\([^$]*\)[^$]*\$", text):
        return re.sub(
            r"\$([^$]*)\$",
            lambda m: "$" + m.group(1).replace("(", "\\left(").replace(")", "\\right)") + "$",
            text,
        )
    if "\\le " in text or "\\ge " in text:
        return text.replace("\\le ", "\\leq ").replace("\\ge ", "\\geq ")
    return None


def instruction(text: str, rng: random.Random) -> str | None:
    return text.rstrip() + rng.choice(SUFFIXES)


def prefix(text: str, rng: random.Random) -> str | None:
    return rng.choice(PREFIXES) + text


def unicode_marks(text: str, rng: random.Random) -> str | None:
    changed = re.sub(r"(?<=\w)'(?=\w)", "\u2019", text)
    changed = re.sub(r'"([^"$]*)"', "\u201c\\1\u201d", changed)
    changed = re.sub(r"'([^'$]*)'", "\u2018\\1\u2019", changed)
    changed = re.sub(r" (?=[a-z])", lambda m: "\u00a0" if rng.random() < 0.2 else " ", changed)
    return changed if changed != text else None


def _sentence_ends(text: str) -> list[int]:
    """Offsets just after each sentence end outside $...$ math (followed by space and more text)."""
    ends, in_math = [], False
    for i, ch in enumerate(text):
        if ch == "$":
            in_math = not in_math
        elif (
            ch in ".?!"
            and not in_math
            and i + 2 < len(text)
            and text[i + 1] in " \n"
            and text[i + 2 :].strip()
        ):
            ends.append(i + 1)
    return ends


def drop_last_sentence(text: str, rng: random.Random) -> str | None:
    if "[asy]" in text:  # the last "sentence" would be a diagram, not prose
        return None
    ends = _sentence_ends(text.rstrip())
    if not ends:
        return None
    kept = text[: ends[-1]]
    return kept if len(kept.split()) >= 6 else None


def change_number(text: str, rng: random.Random) -> str | None:
    spots = [m for m in re.finditer(r"(?<![\\\w])\d+", text)]
    if not spots:
        return None
    spot = rng.choice(spots)
    value = int(spot.group())
    new = (
        value + rng.choice([1, 2, 3, 5, 7]) if value < 3 or rng.random() < 0.5 else value - rng.choice([1, 2])
    )
    return text[: spot.start()] + str(new) + text[spot.end() :]


DUPLICATE_PERTURBATIONS = {
    "spacing": spacing,
    "latex": latex_variant,
    "instruction": instruction,
    "prefix": prefix,
    "unicode": unicode_marks,
    "drop_last_sentence": drop_last_sentence,
}


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def base_problems() -> list[str]:
    """Distinct real problems, without the ambiguous ones (see module docstring)."""
    seen_grams: set[tuple[str, ...]] = set()
    seen_prefix: set[str] = set()
    problems = []
    for name in BASE_FILES:
        for line in (DATA / name).read_text().splitlines():
            text = json.loads(line)["problem"].strip()
            words = _words(text)
            grams = {tuple(words[i : i + 13]) for i in range(max(1, len(words) - 12))}
            key = " ".join(words)[:60]
            if key in seen_prefix or grams & seen_grams:
                continue
            seen_prefix.add(key)
            seen_grams |= grams
            problems.append(text)
    return problems


def perturbed(text: str, rng: random.Random, stack: int) -> tuple[str, list[str]] | None:
    """A duplicate copy with `stack` different perturbations, or None when too few apply."""
    names = list(DUPLICATE_PERTURBATIONS)
    rng.shuffle(names)
    applied = []
    for name in names:
        result = DUPLICATE_PERTURBATIONS[name](text, rng)
        if result is not None and result != text:
            text, applied = result, applied + [name]
        if len(applied) == stack:
            return text, applied
    return (text, applied) if applied else None


def build_corpus(copies: float, changed: float, seed: int = 0, limit: int | None = None) -> list[dict]:
    """Documents {id, text, group, kind}: every base problem, `copies` duplicate copies per problem
    on average (30% of them with two stacked perturbations) and `changed` changed-number copies."""
    rng = random.Random(seed)
    problems = base_problems()[:limit]
    docs: list[dict] = []
    group = 0
    for text in problems:
        group += 1
        docs.append({"text": text, "group": group, "kind": "original"})
        n_copies = int(copies) + (rng.random() < copies - int(copies))
        for _ in range(n_copies):
            made = perturbed(text, rng, 2 if rng.random() < 0.3 else 1)
            if made:
                docs.append({"text": made[0], "group": group, "kind": "+".join(made[1])})
        n_changed = int(changed) + (rng.random() < changed - int(changed))
        for _ in range(n_changed):
            distinct = change_number(text, rng)
            if distinct is not None:
                group += 1
                docs.append(
                    {
                        "text": spacing(distinct, rng) if rng.random() < 0.3 else distinct,
                        "group": group,
                        "kind": "changed_number",
                    }
                )
    rng.shuffle(docs)
    for index, doc in enumerate(docs):
        doc["id"] = f"d{index:07d}"
    return docs


def score(docs: list[dict], kept_ids: set[str]) -> dict:
    """Precision and recall of removed documents against the group labels (module docstring)."""
    size, kept = Counter(d["group"] for d in docs), Counter(d["group"] for d in docs if d["id"] in kept_ids)
    removed = len(docs) - len(kept_ids)
    expected = sum(s - 1 for s in size.values())
    true_removals = sum(min(size[g] - kept[g], size[g] - 1) for g in size)
    by_kind: Counter[str] = Counter()
    missed_kind: Counter[str] = Counter()
    group_removed = Counter(d["group"] for d in docs if d["id"] not in kept_ids)
    for d in docs:
        if d["kind"] != "original":
            for part in d["kind"].split("+"):
                by_kind[part] += 1
                missed_kind[part] += d["id"] in kept_ids and kept[d["group"]] > 1
    lost = sum(1 for g in size if kept[g] == 0)
    wrongly_removed_changed = sum(
        1 for d in docs if d["kind"] == "changed_number" and d["id"] not in kept_ids
    )
    return {
        "docs": len(docs),
        "removed": removed,
        "expected_removals": expected,
        "precision": true_removals / removed if removed else 1.0,
        "recall": true_removals / expected if expected else 1.0,
        "groups_lost": lost,
        "changed_number_removed": wrongly_removed_changed,
        "dup_copies_kept_by_perturbation": {k: f"{missed_kind[k]}/{by_kind[k]}" for k in sorted(by_kind)},
        "removed_in_groups": sum(group_removed.values()),
    }


# ---------------------------------------------------------------------------------------------
# the two tools, each run in a child process (so imports and worker pools count, and RSS is theirs)

SHINGLE_SIZE, NUM_PERM = 5, 128
DATATROVE_BUCKETS, DATATROVE_ROWS = 16, 8  # datatrove's 8 hashes per bucket, 16 buckets = 128 hashes


def run_distillery(corpus: Path, work: Path, workers: int) -> list[str]:
    from curate.pipeline import curate
    from curate.stages import PIPELINE

    ours = {"normalize", "exact_dedup", "near_dedup"}
    stages = {name: ({} if name in ours else {"enabled": False}) for name in PIPELINE}
    stages["near_dedup"] = {"shingle_size": SHINGLE_SIZE, "num_perm": NUM_PERM}
    results = curate([str(corpus)], work / "ws", {"stages": stages}, workers=workers, progress=False)
    import polars as pl

    last = work / "ws" / "stages" / f"{results[-1]['index']:02d}_{results[-1]['name']}"
    kept = pl.scan_parquet(str(last / "part-*.parquet")).select(
        pl.col("meta").str.json_path_match("$.doc_id")
    )
    return kept.collect()["meta"].to_list()


def _datatrove_tokenizer() -> tuple[object, str]:
    """datatrove's English default (spaCy's blank 'en' tokenizer: no model download) when spaCy is
    installed; otherwise a whitespace tokenizer passed in its place (stated in the output)."""
    try:
        import spacy  # noqa: F401

        return "en", "spaCy blank('en') (datatrove default for English)"
    except ImportError:
        from datatrove.utils.word_tokenizers import WordTokenizer

        class Whitespace(WordTokenizer):
            def word_tokenize(self, text: str) -> list[str]:
                return text.split()

            def sent_tokenize(self, text: str) -> list[str]:
                return [text]

            def span_tokenize(self, text: str) -> list[tuple[int, int]]:
                return [(0, len(text))]

        return Whitespace(), "whitespace split (spaCy not installed; datatrove's default needs it)"


def run_datatrove(corpus: Path, work: Path, workers: int) -> list[str]:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import (
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    language, _ = _datatrove_tokenizer()
    config = MinhashConfig(
        n_grams=SHINGLE_SIZE, num_buckets=DATATROVE_BUCKETS, hashes_per_bucket=DATATROVE_ROWS
    )
    split = work / "input"
    split.mkdir(parents=True)
    lines = corpus.read_text().splitlines(keepends=True)
    for part in range(workers):  # one input file per task, as datatrove parallelises by file
        (split / f"part{part}.jsonl").write_text("".join(lines[part::workers]))

    def reader() -> JsonlReader:
        return JsonlReader(str(split), text_key="problem", id_key="doc_id")

    sigs, buckets, clusters, out = (str(work / name) for name in ("sigs", "buckets", "clusters", "out"))
    logs = str(work / "logs")
    steps = [
        ([reader(), MinhashDedupSignature(output_folder=sigs, config=config, language=language)], workers),
        ([MinhashDedupBuckets(input_folder=sigs, output_folder=buckets, config=config)], config.num_buckets),
        ([MinhashDedupCluster(input_folder=buckets, output_folder=clusters, config=config)], 1),
        ([reader(), MinhashDedupFilter(input_folder=clusters), JsonlWriter(out, compression=None)], workers),
    ]
    for index, (pipeline, tasks) in enumerate(steps):
        LocalPipelineExecutor(
            pipeline=pipeline,
            tasks=tasks,
            workers=min(workers, tasks),
            logging_dir=f"{logs}/{index}",
            skip_completed=False,
        ).run()
    return [json.loads(line)["id"] for file in sorted(Path(out).glob("*.jsonl")) for line in open(file)]


TOOLS = {"distillery": run_distillery, "datatrove": run_datatrove}


def child_main(tool: str, corpus: Path, work: Path, workers: int, result: Path) -> None:
    started = time.perf_counter()
    kept = TOOLS[tool](corpus, work, workers)
    result.write_text(json.dumps({"seconds": time.perf_counter() - started, "kept": kept}))


def measure(tool: str, corpus: Path, workers: int) -> dict:
    """Run one tool in a child process; wall time, peak RSS of its process tree, kept ids."""
    with tempfile.TemporaryDirectory(prefix=f"dedup-{tool}-") as tmp:
        work, result = Path(tmp), Path(tmp) / "result.json"
        command = [
            sys.executable,
            __file__,
            "--child",
            tool,
            "--corpus",
            str(corpus),
            "--work",
            str(work / "w"),
            "--workers",
            str(workers),
            "--result",
            str(result),
        ]
        wall, peak, child, cpu = run_measured(command, cwd=REPO)
        if child.returncode != 0:
            raise SystemExit(f"{tool} failed with exit code {child.returncode}")
        data = json.loads(result.read_text())
    return {
        "seconds": wall,
        "cpu_seconds": cpu,
        "peak_rss_mb": peak / 2**20,
        "kept": set(data["kept"]),
    }


def write_corpus(docs: list[dict], path: Path) -> None:
    with open(path, "w") as out:
        for doc in docs:
            out.write(json.dumps({"problem": doc["text"], "doc_id": doc["id"]}, ensure_ascii=False) + "\n")


def compare(name: str, docs: list[dict], workers: int, tools: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="dedup-corpus-") as tmp:
        corpus = Path(tmp) / f"{name}.jsonl"
        write_corpus(docs, corpus)
        print(f"\n== {name}: {len(docs):,} documents, {workers} workers ==")
        rows = {}
        for tool in tools:
            run = measure(tool, corpus, workers)
            rows[tool] = {**score(docs, run["kept"]), **run}
        print(
            f"{'tool':<12}{'docs/s':>10}{'seconds':>9}{'CPU s':>8}{'peak RSS MB':>13}{'precision':>11}{'recall':>8}"
            f"{'lost groups':>13}{'changed-number removed':>24}"
        )
        for tool, r in rows.items():
            speed = (
                f"{len(docs) / r['seconds']:>10,.0f}{r['seconds']:>9.1f}{r['cpu_seconds']:>8.1f}"
                f"{r['peak_rss_mb']:>13,.0f}"
            )
            quality = f"{r['precision']:>11.4f}{r['recall']:>8.4f}{r['groups_lost']:>13,}"
            print(f"{tool:<12}{speed}{quality}{r['changed_number_removed']:>24,}")
        for tool, r in rows.items():
            print(
                f"  {tool} duplicate copies left (kept while their group keeps another), by perturbation: "
                f"{r['dup_copies_kept_by_perturbation']}"
            )
        if {"distillery", "datatrove"} <= set(rows):
            ours, theirs = rows["distillery"], rows["datatrove"]
            print(
                f"ratio distillery/datatrove (its tokenizer: {_datatrove_tokenizer()[1]}): "
                f"docs/s x{theirs['seconds'] / ours['seconds']:.2f}, "
                f"CPU seconds x{theirs['cpu_seconds'] / ours['cpu_seconds']:.2f}, "
                f"peak RSS x{ours['peak_rss_mb'] / theirs['peak_rss_mb']:.2f}"
            )
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=["quality", "speed"], help="run one part")
    parser.add_argument("--tools", default="distillery,datatrove")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--speed-docs", type=int, default=110_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", choices=list(TOOLS), help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args.child, args.corpus, args.work, args.workers, args.result)
        return
    if not (DATA / BASE_FILES[0]).exists():
        raise SystemExit(f"shared data not found at {DATA}")
    tools = args.tools.split(",")
    if "datatrove" in tools:
        print(f"datatrove word tokenizer: {_datatrove_tokenizer()[1]}")
    print(
        f"shingles: word/token {SHINGLE_SIZE}-grams, {NUM_PERM} hashes "
        f"(datatrove {DATATROVE_BUCKETS} buckets x {DATATROVE_ROWS}; near_dedup defaults otherwise)"
    )
    if args.only in (None, "quality"):
        compare("quality", build_corpus(copies=0.7, changed=0.12, seed=args.seed), args.workers, tools)
    if args.only in (None, "speed"):
        base = len(base_problems())
        copies = max(0.0, args.speed_docs / base - 1.25)
        docs = build_corpus(copies=copies, changed=0.25, seed=args.seed)
        compare("speed", docs, args.workers, tools)


if __name__ == "__main__":
    main()
