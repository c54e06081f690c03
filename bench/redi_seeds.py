"""SFT then REDI against SFT alone, on the demo's math domain, over several corpus seeds.

    .venv/bin/python bench/redi_seeds.py                        # seeds 0 1 2, every arm
    .venv/bin/python bench/redi_seeds.py --seeds 0 1 2 3 --arms default
    .venv/bin/python bench/redi_seeds.py --set '{"sft": {"defaults": {"epochs": 4}}}' --out DIR

Per seed, into OUT/seed-N (default OUT: bench/out/redi_seeds): the demo corpus's math domain
(distill/demo/corpus, `--math` training rows, 200 held-out problems), plus, for `--share` of its clean
training problems, a second teacher sample that slips (the final result off by one, in the last
step and the box: what verify fails as `fail`). That is what REDI needs and the demo corpus lacks:
its planted wrong answers are problems of their own, with no passing trace to pair with. The
demo recipe then runs on math alone (its tiny base, its student settings, no merge or joint
baseline), with a `redi` step after the student, and every model is scored greedy on the same
held-out problems. The SFT student is the same run for every arm; each arm retrains only
redi/math and its eval (the recipe engine reuses the rest), so the arms differ in REDI alone
(an arm's results are kept in OUT/seed-N/results-<arm>.json and read back by a rerun with the
same settings, so adding seeds runs only the new ones):

    default   the recipe step's defaults: alpha 0.8, lr a tenth of the student's (1e-5), 1 epoch
    strong    alpha 0.8, the student's lr (1e-4), 3 epochs
    alpha0    as strong with alpha 0: more SFT on the passing side only, the control that says
              whether the negatives, rather than more steps on the positives, move the score

Prints per seed and arm the pass@1 of base, SFT student and SFT+REDI, then per arm the mean
difference to the student, its standard deviation over seeds, min and max, with the load average.
A problem is 0.5 points of pass@1 here (200 problems): differences of a point or two are noise.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere: import this checkout's packages

from bench.common import wall_and_load  # noqa: E402
from distill.demo.run import deep_update, demo_recipe  # noqa: E402
from distill.generate.runner import format_table  # noqa: E402

OUT = REPO / "bench" / "out" / "redi_seeds"
ARMS = {
    "default": {},
    "strong": {"lr": 1.0e-4, "epochs": 3},
    "alpha0": {"lr": 1.0e-4, "epochs": 3, "alpha": 0.0},
}


def slip(response: str, reference: str, rng: random.Random) -> str | None:
    """The trace with its final integer result off by one (last step and box), or None."""
    if not re.fullmatch(r"\d+", reference or "") or f"\\boxed{{{reference}}}" not in response:
        return None
    wrong = str(int(reference) + rng.choice((-1, 1)) if reference != "0" else 1)
    think, sep, answer = response.rpartition("</think>")
    step = think.rfind(f"= {reference}")
    if step >= 0:
        think = think[:step] + f"= {wrong}" + think[step + len(f"= {reference}") :]
    return think + sep + answer.replace(f"\\boxed{{{reference}}}", f"\\boxed{{{wrong}}}")


def write_corpus(out: Path, seed: int, math: int, share: float) -> tuple[Path, Path, int]:
    """The demo corpus's math domain and the slipped second samples; (traces, negatives, count)."""
    from distill.demo.corpus.build import write_corpus as write_demo_corpus
    from distill.demo.corpus.config import CorpusConfig

    config = CorpusConfig(
        seed=seed, math=math, code=0, science=0, eval_math=200, eval_code=0, eval_science=0, defect_rate=0.02
    )
    files = write_demo_corpus(out / "corpus", config)
    truth = {t["key"]: t for t in map(json.loads, files.truth.read_text().splitlines())}
    rng = random.Random(f"redi-negatives:{seed}")
    negatives = []
    for row in map(json.loads, files.traces.read_text().splitlines()):
        if truth[row["key"]]["defect"] is not None or rng.random() >= share:
            continue
        wrong = slip(row["messages"][-1]["content"], row["reference"], rng)
        if wrong is not None:
            messages = [*row["messages"][:-1], {"role": "assistant", "content": wrong}]
            negatives.append({**row, "key": f"{row['key']}-slip", "messages": messages})
    path = out / "negatives.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in negatives))
    return files.traces, path, len(negatives)


def recipe_for(corpus: Path, traces: Path, negatives: Path, redi: dict, overrides: dict) -> dict:
    recipe = demo_recipe()
    for key in ("corpus", "merge", "joint", "variants"):
        recipe.pop(key, None)
    bench = str(corpus / "eval" / "math.jsonl")
    recipe = deep_update(
        recipe,
        {
            "inputs": [str(traces), str(negatives)],
            "domains": ["math"],
            "curate": {"stages": {"decontaminate": {"benchmarks": [bench]}}},
            "sft": {"domains": {}},
            "eval": {"benches": [f"math={bench}"]},
            "redi": {"defaults": redi},
        },
    )
    return deep_update(recipe, overrides)


def main() -> None:
    from distill.recipe import run_recipe

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    parser.add_argument("--math", type=int, default=800, help="clean math training rows (the demo's 800)")
    parser.add_argument("--share", type=float, default=0.5, help="share of problems given a slipped sample")
    parser.add_argument("--set", type=json.loads, default={}, help="recipe overrides, as JSON")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    began, load_before = time.perf_counter(), os.getloadavg()
    rows, deltas = [], {arm: [] for arm in args.arms}
    for seed in args.seeds:
        out = args.out / f"seed-{seed}"
        traces, negatives, count = write_corpus(out, seed, args.math, args.share)
        for arm in args.arms:
            print(f"seed {seed}, arm {arm}: {out} ({count} slipped samples)", flush=True)
            recipe = recipe_for(out / "corpus", traces, negatives, ARMS[arm], args.set)
            saved = out / f"results-{arm}.json"
            # The arms share one run folder, so an arm run earlier with this recipe is read back:
            # running it again would retrain its REDI step (the folder holds the last arm's).
            results = json.loads(saved.read_text()) if saved.is_file() else {}
            if results.get("bench_recipe") != recipe:
                results = run_recipe(recipe, out / "run", progress=False, log=lambda line: None)
                results["bench_recipe"] = recipe
                saved.write_text(json.dumps(results, indent=2) + "\n")
            scores = {label: results["eval"][label]["math"] for label in ("base", "math", "math-redi")}
            step = results["steps"]["redi/math"]
            delta = scores["math-redi"] - scores["math"]
            deltas[arm].append(delta)
            rows.append(
                (
                    seed,
                    arm,
                    step["pairs"],
                    step["steps"],
                    scores["base"],
                    scores["math"],
                    scores["math-redi"],
                    f"{100 * delta:+.1f}",
                )
            )
    headers = ("seed", "arm", "pairs", "redi steps", "base", "SFT", "SFT+REDI", "diff (points)")
    print(format_table(headers, rows))
    print()
    summary = []
    for arm, values in deltas.items():
        spread = statistics.stdev(values) if len(values) > 1 else float("nan")
        wins = sum(v > 0 for v in values), sum(v == 0 for v in values), sum(v < 0 for v in values)
        summary.append(
            (
                arm,
                len(values),
                f"{100 * statistics.mean(values):+.2f}",
                f"{100 * spread:.2f}",
                f"{100 * min(values):+.1f}",
                f"{100 * max(values):+.1f}",
                "/".join(map(str, wins)),
            )
        )
    print(format_table(("arm", "seeds", "mean diff", "stdev", "min", "max", "better/same/worse"), summary))
    print("\n" + wall_and_load(began, load_before))


if __name__ == "__main__":
    main()
