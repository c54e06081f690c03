"""How much of the students' gains the demo's merge keeps, over several corpus draws.

    .venv/bin/python bench/demo_seeds.py                 # corpus seeds 0 1 2 (about 3 CPU minutes each)
    .venv/bin/python bench/demo_seeds.py --seeds 0 1 2 3 4
    .venv/bin/python bench/demo_seeds.py --set '{"sft": {"domains": {"code": {"epochs": 12}}}}' --out DIR

One `distillery demo` run per corpus seed (the demo recipe with `corpus.seed` changed, and `--set`
merged in), each into OUT/seed-N (default OUT: bench/out/demo_seeds): a rerun skips the steps already
done, so a variant whose OUT starts as a copy of another's retrains only what its settings change.
Prints, per seed and domain, the student's gain over the base and the share of it the merged model
(the demo's `kept`) and the joint baseline keep, then the mean over seeds. One draw says little: a problem is 0.5-0.7 points of pass@1 on the demo's eval
sets, and the training rows change with the seed too.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere: import this checkout's packages

from distill.demo.run import deep_update, run_demo  # noqa: E402
from distill.generate.runner import format_table  # noqa: E402

OUT = REPO / "bench" / "out" / "demo_seeds"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", type=json.loads, default={}, help="recipe overrides, as JSON")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    rows, kept = [], {}
    for seed in args.seeds:
        out = args.out / f"seed-{seed}"
        print(f"seed {seed}: {out}", flush=True)
        overrides = deep_update(args.set, {"corpus": {"seed": seed}})
        results = run_demo(out, overrides=overrides, progress=False, log=lambda line: None)
        joint = results["eval"].get("joint", {})
        for domain, c in results["claim"].items():
            gained = c["kept"] is not None and domain in joint
            baseline = (joint[domain] - c["base"]) / c["student_gain"] if gained else None
            rows.append((seed, domain, c["base"], c["student_gain"], percent(c["kept"]), percent(baseline)))
            if c["kept"] is not None:
                kept.setdefault(domain, []).append(c["kept"])
    print(format_table(("seed", "domain", "base", "student gain", "merge keeps", "joint keeps"), rows))
    print()
    summary = []
    for domain, values in kept.items():
        summary.append(
            (domain, len(values), *map(percent, (statistics.mean(values), min(values), max(values))))
        )
    print(format_table(("domain", "seeds with a gain", "merge keeps (mean)", "min", "max"), summary))


if __name__ == "__main__":
    main()
