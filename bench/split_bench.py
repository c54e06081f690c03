"""Domain benchmark: how well the domain stage labels the shared data, rules against the learned option.

There is no anchor tool for this (no embedding model or fastText classifier can be installed or
downloaded here), so the reference is the truth we know from the data itself: every file of
../shared/data is one domain (math/, problems/ and bench/gsm8k are math; code/ is code). Three figures:

1. content rules alone (dataset names and meta tags switched off) against that truth;
2. the learned classifier's accuracy against the rule labels on held-out problems, as the split
   stage reports it in the manifest (`method: learned`);
3. out-of-source generalisation: the classifier trained on MATH-500 + HumanEval rows only, then
   asked about every other source, against the truth.

    .venv-bench/bin/python bench/split_bench.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sql  # noqa: E402
from curate.classify import HashedNgramClassifier  # noqa: E402
from curate.readers import resolve_inputs  # noqa: E402
from curate.stage import run_stages  # noqa: E402
from curate.stages import Ingest  # noqa: E402
from curate.stages.domain import Domain  # noqa: E402
from curate.workspace import Workspace  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
FILES = {
    "math/math500.jsonl": "math",
    "math/qwen_math_cot_100.jsonl": "math",
    "problems/math_train.jsonl": "math",
    "problems/aime_train.jsonl": "math",
    "bench/gsm8k_test.jsonl": "math",
    "code/humaneval.jsonl": "code",
    "code/codeforces.jsonl": "code",
}
CONTENT_ONLY = {"source_name": 0, "meta_tag": 0}
TRUTH = {Path(f).stem: d for f, d in FILES.items()}


def split_run(root: Path, **options) -> tuple[list[tuple], dict, float]:
    ws = Workspace.open(root, create=True)
    inputs = resolve_inputs([str(DATA / f) for f in FILES])
    started = time.perf_counter()
    results = run_stages(ws, [Ingest(inputs), Domain(weights=CONTENT_ONLY, **options)], progress=False)
    seconds = time.perf_counter() - started
    rows = sql.connect(root).execute("SELECT source, domain, problem, response FROM kept").fetchall()
    return rows, results[-1], seconds


def accuracy(rows: list[tuple]) -> str:
    right = sum(domain == TRUTH[source] for source, domain, *_ in rows)
    return f"{right:,}/{len(rows):,} = {100 * right / len(rows):.2f}%"


def per_source(rows: list[tuple]) -> str:
    lines = []
    for source in TRUTH:
        mine = [r for r in rows if r[0] == source]
        wrong = sum(r[1] != TRUTH[source] for r in mine)
        others = sorted({r[1] for r in mine if r[1] != TRUTH[source]})
        lines.append(f"    {source:<20} {len(mine):>6,} rows  {wrong:>4} not {TRUTH[source]} {others or ''}")
    return "\n".join(lines)


def main() -> int:
    if not DATA.exists():
        print(f"shared data not found at {DATA}")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        rules, _, rules_s = split_run(Path(tmp) / "rules")
        learned, info, learned_s = split_run(Path(tmp) / "learned", method="learned")
    print(f"1. content rules vs truth:          {accuracy(rules)}   ({rules_s:.1f} s with ingest)")
    print(per_source(rules))
    stats = info["classifier"]
    print(
        f"2. learned vs rule labels, held out: {stats['holdout_accuracy_vs_rules'] * 100:.2f}% of "
        f"{stats['holdout_rows']:,} rows (trained on {stats['train_rows']:,})"
    )
    print(f"   learned split vs truth:          {accuracy(learned)}   ({learned_s:.1f} s with ingest)")
    print(per_source(learned))

    train = [r for r in rules if r[0] in ("math500", "humaneval")]
    test = [r for r in rules if r[0] not in ("math500", "humaneval")]
    model = HashedNgramClassifier(["code", "math"]).fit(
        [f"{p}\n{(s or '')[:500]}" for _, _, p, s in train], [TRUTH[r[0]] for r in train]
    )
    predicted = model.predict([f"{p}\n{(s or '')[:500]}" for _, _, p, s in test])
    relabelled = [(r[0], d, r[2], r[3]) for r, d in zip(test, predicted, strict=True)]
    print(
        f"3. trained on math500 + humaneval only ({len(train)} rows), other sources vs truth: {accuracy(relabelled)}"
    )
    print(per_source(relabelled))
    return 0


if __name__ == "__main__":
    sys.exit(main())
