"""The demo's verified-only against unverified variant pair, over several corpus seeds.

    nice -n 10 .venv/bin/python bench/variants_seeds.py                 # seeds 0 1 2
    nice -n 10 .venv/bin/python bench/variants_seeds.py --seeds 0 1 2 3 4
    nice -n 10 .venv/bin/python bench/variants_seeds.py --set '{"corpus": {"defect_rate": 0.1}}' --out DIR

The shortest honest form of the demo's `verified` / `unverified` variants (distill/demo/demo.yaml):
per seed, into OUT/seed-N (default OUT: bench/out/variants_seeds), the demo recipe on its math domain
alone (the demo corpus's 800 math rows with its planted defects, the wrong answers among them, and
its 200 held-out math problems; no code or science, no merge, no joint baseline), its tiny base
pretrained on 30% of the math rows, one math student on the verified rows (the recipe itself,
`verified` below) and, as the variant `unverified`, one with verify keeping the failed traces too
(`verify.keep: [pass, fail]`) from the same base, with the same seeds and settings. The recipe
engine links what the two share (the corpus, the base), so each seed trains one base and two
students; a rerun skips the steps already done, so adding seeds runs only the new ones.

Prints per seed each variant's pass@1 on the held-out problems and the rows, tokens and steps its
student trained on, then per variant and domain the mean, standard deviation, min and max over the
seeds, and the paired difference (unverified minus verified) per seed with its mean and spread,
with the load average. A problem is 0.5 points of pass@1 here (200 problems).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere: import this checkout's packages

from bench.common import wall_and_load  # noqa: E402
from distill.demo.run import deep_update, demo_recipe  # noqa: E402
from distill.generate.runner import format_table  # noqa: E402

OUT = REPO / "bench" / "out" / "variants_seeds"
VERIFIED, UNVERIFIED = "verified", "unverified"


def pair_recipe(demo: dict, seed: int, overrides: dict) -> dict:
    """The demo recipe `demo` on math alone at corpus seed `seed`, with the variant `unverified`."""
    recipe = dict(demo)
    for key in ("merge", "joint", "variants"):
        recipe.pop(key)
    bench = "{out}/corpus/eval/math.jsonl"
    recipe = deep_update(
        recipe,
        {
            "corpus": {"seed": seed, "code": 0, "science": 0, "eval_code": 0, "eval_science": 0},
            "domains": ["math"],
            "curate": {"stages": {"decontaminate": {"benchmarks": [bench]}}},
            "sft": {"replay": 0.0},
            "eval": {"benches": [f"math={bench}"]},
        },
    )
    # No merge search here, so no validation problems for it (where the demo's corpus has them).
    recipe["corpus"] = {k: 0 if k.startswith("val_") else v for k, v in recipe["corpus"].items()}
    recipe = deep_update(recipe, overrides)
    recipe["variants"] = {
        UNVERIFIED: {
            "curate": {"stages": {"verify": {"keep": ["pass", "fail"]}}},
            "base": {"path": "{main}/base/model"},  # the recipe's own base, not one pretrained anew
        }
    }
    return recipe


def spread(values: list[float]) -> str:
    return f"{100 * statistics.stdev(values):.2f}" if len(values) > 1 else "-"


def main() -> None:
    from distill.recipe import run_recipe

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", type=json.loads, default={}, help="recipe overrides, as JSON")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    began, load_before = time.perf_counter(), os.getloadavg()
    demo = demo_recipe()  # read once: every seed runs the same recipe
    rows = []
    scores: dict[tuple[str, str], list[float]] = {}  # (variant, domain) -> pass@1 per seed
    diffs: dict[str, list[float]] = {}  # domain -> unverified minus verified, per seed
    for seed in args.seeds:
        out = args.out / f"seed-{seed}"
        print(f"seed {seed}: {out}", flush=True)
        results = run_recipe(pair_recipe(demo, seed, args.set), out, progress=False, log=lambda line: None)
        students = {
            r["variant"]: r for r in results["variants"]["table"] if r["model"] == "math" and r["rows"]
        }
        students[VERIFIED] = students.pop("recipe")
        base = results["eval"]["base"]
        for variant in (VERIFIED, UNVERIFIED):
            r = students[variant]
            for domain, value in r["pass@1"].items():
                scores.setdefault((variant, domain), []).append(value)
            rows.append(
                (seed, variant, *(r["pass@1"][d] for d in sorted(base)), r["rows"], r["tokens"], r["steps"])
            )
        for domain in sorted(base):
            diffs.setdefault(domain, []).append(
                students[UNVERIFIED]["pass@1"][domain] - students[VERIFIED]["pass@1"][domain]
            )
        rows.append((seed, "(base)", *(base[d] for d in sorted(base)), None, None, None))
    domains = sorted(diffs)
    print(format_table(("seed", "variant", *domains, "rows", "tokens", "steps"), rows))
    print()
    summary = [
        (
            variant,
            domain,
            len(values),
            f"{statistics.mean(values):.3f}",
            spread(values),
            f"{min(values):.3f}",
            f"{max(values):.3f}",
        )
        for (variant, domain), values in scores.items()
    ]
    print(
        format_table(("variant", "domain", "seeds", "mean pass@1", "stdev (points)", "min", "max"), summary)
    )
    print()
    paired = []
    for domain, values in diffs.items():
        better = sum(v > 0 for v in values), sum(v == 0 for v in values), sum(v < 0 for v in values)
        paired.append(
            (
                domain,
                " ".join(f"{100 * v:+.1f}" for v in values),
                f"{100 * statistics.mean(values):+.2f}",
                spread(values),
                "/".join(map(str, better)),
            )
        )
    headers = ("domain", "unverified - verified (points, per seed)", "mean", "stdev", "better/same/worse")
    print(format_table(headers, paired))
    print("\n" + wall_and_load(began, load_before))


if __name__ == "__main__":
    main()
