"""`distillery demo [--out DIR]`: the whole Branch-Merge loop on the built-in corpus, on a laptop CPU.

The demo is the recipe distill/demo/demo.yaml: write the synthetic teacher corpus (corpus/), curate
it, build a tiny base model trained briefly on a share of every domain's shards, SFT one student per
domain from it (replaying the base's share of the other domains), merge the students, and evaluate
every model on the held-out problems of each domain. On top of the recipe's table it scores curation
against the corpus's truth (per planted defect type) and states whether the Branch-Merge claim holds
in miniature: each student gains on its own domain and the merged model keeps most of those gains.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from distill.recipe.variants import deep_update

DEMO_RECIPE = Path(__file__).with_name("demo.yaml")
DDK_VARIANT = "ddk"  # the demo recipe's variants (demo.yaml)
DATA_VARIANTS = ("verified", "unverified")


def demo_recipe(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The demo recipe as a mapping, with `overrides` merged in (tests use it to shrink the run)."""
    import yaml

    return deep_update(yaml.safe_load(DEMO_RECIPE.read_text()), overrides or {})


def claim(
    table: dict[str, dict[str, float]], domains: list[str], merged_label: str = "merged"
) -> dict[str, dict[str, float | None]]:
    """Per domain: the base's score, its own student's, the merged model's, both gains over the base,
    and `kept`, the share of the student's gain the merged model keeps (None without a gain)."""
    report = {}
    for domain in domains:
        base, student, merged = (table.get(label, {}).get(domain) for label in ("base", domain, merged_label))
        if None in (base, student, merged):
            continue
        gain, merged_gain = student - base, merged - base
        report[domain] = {
            "base": base,
            "student": student,
            "merged": merged,
            "student_gain": gain,
            "merged_gain": merged_gain,
            "kept": merged_gain / gain if gain > 0 else None,
        }
    return report


def verdict(report: dict[str, dict[str, float | None]], merge: str = "the merge") -> str:
    """One line on the claim: does every student gain on its own domain, and does the merged model keep
    most (more than half) of every gain? `merge` names the merged model in the line."""
    if not report:
        return "claim: no domain has a base, a student and a merged score"
    gains = [d for d, c in report.items() if c["student_gain"] > 0]
    kept = [d for d in gains if report[d]["kept"] > 0.5]
    shares = ", ".join(f"{d} {100 * report[d]['kept']:.0f}%" for d in gains)
    first = f"{len(gains)}/{len(report)} students gain on their own domain"
    second = (
        f"{merge} keeps more than half of {len(kept)} of those {len(gains)} gains ({shares})"
        if gains
        else ("no gain for the merge to keep")
    )
    holds = len(gains) == len(report) and len(kept) == len(gains)
    return f"claim {'holds' if holds else 'does not hold'}: {first}; {second}"


def curation_table(curation: dict[str, dict[str, Any]]) -> str:
    from distill.generate.runner import format_table

    rows = [
        (
            defect,
            s["planted"],
            s["caught"],
            s["precision"],
            s["recall"],
            ", ".join(f"{stage} {n}" for stage, n in s["by_stage"].items()),
        )
        for defect, s in curation.items()
    ]
    return format_table(("planted defect", "planted", "caught", "precision", "recall", "ended at"), rows)


def claim_table(report: dict[str, dict[str, float | None]]) -> str:
    from distill.generate.runner import format_table

    rows = [
        (
            domain,
            c["base"],
            c["student"],
            c["merged"],
            c["student_gain"],
            c["merged_gain"],
            "-" if c["kept"] is None else f"{100 * c['kept']:.0f}%",
        )
        for domain, c in report.items()
    ]
    return format_table(
        ("domain", "base", "own student", "merged", "student gain", "merged gain", "kept"), rows
    )


def search_table(results: dict[str, Any]) -> str:
    """The share of each student's gain kept on the test set by the fixed merge, the searched merge
    (searched on the validation sets) and the joint baseline, side by side."""
    from distill.generate.runner import format_table

    joint = results["eval"].get("joint", {})
    rows = []
    for domain, fixed in results["claim"].items():
        searched = results.get("claim_search", {}).get(domain, {})
        gain = fixed["student_gain"]
        baseline = (joint[domain] - fixed["base"]) / gain if gain > 0 and domain in joint else None
        rows.append(
            (
                domain,
                gain,
                "-" if fixed["kept"] is None else f"{100 * fixed['kept']:.0f}%",
                "-" if searched.get("kept") is None else f"{100 * searched['kept']:.0f}%",
                "-" if baseline is None else f"{100 * baseline:.0f}%",
            )
        )
    return format_table(
        ("domain", "student gain", "fixed merge keeps", "searched keeps", "joint keeps"), rows
    )


def search_cost(results: dict[str, Any]) -> str:
    """One line: what the search evaluated, in how many seconds, next to the joint baseline's training."""
    summary = results["steps"].get("merge_search", {})
    seconds = results.get("step_seconds", {})
    problems = "/".join(str(n) for n in (summary.get("validation") or {}).values())
    joint = seconds.get("joint")
    return (
        f"merge search: {summary.get('evaluations', 0) + summary.get('read_back', 0)} evaluations on the validation sets "
        f"({problems} problems), {seconds.get('merge_search') or 0:.0f}s; best {summary.get('best')} "
        f"{summary.get('parameters')}; the joint baseline trained in "
        + (f"{joint:.0f}s" if joint is not None else "-")
    )


def _keeps(gain: float | None, student_gain: float) -> str:
    return "-" if gain is None or student_gain <= 0 else f"{100 * gain / student_gain:.0f}%"


def joint_table(results: dict[str, Any]) -> str:
    """The joint baseline on uniformly mixed rows against the DDK-weighted one: each one's gain over the
    base per domain, and the share of the domain student's gain that it keeps."""
    from distill.generate.runner import format_table

    uniform = results["eval"].get("joint", {})
    ddk = results["variants"]["runs"][DDK_VARIANT]["eval"].get("joint", {})
    rows = []
    for domain, c in results["claim"].items():
        gains = [table[domain] - c["base"] if domain in table else None for table in (uniform, ddk)]
        rows.append(
            (domain, c["base"], c["student_gain"], gains[0], _keeps(gains[0], c["student_gain"]), gains[1])
            + (_keeps(gains[1], c["student_gain"]),)
        )
    head = ("domain", "base", "student gain", "uniform gain", "uniform keeps", "ddk gain", "ddk keeps")
    return format_table(head, rows)


def ddk_weights_line(out: Path) -> str:
    """The DDK joint baseline's domain weights at its first and last update (its metrics.jsonl)."""
    path = out / "variants" / DDK_VARIANT / "joint" / "metrics.jsonl"
    records = [
        r
        for r in map(json.loads, path.read_text().splitlines())
        if any(k.startswith("ddk_weight/") for k in r)
    ]
    if not records:
        return "ddk: no weights logged"

    def weights(record: dict[str, Any]) -> str:
        return ", ".join(
            f"{k.split('/', 1)[1]} {v:.2f}" for k, v in record.items() if k.startswith("ddk_weight/")
        )

    return (
        f"ddk weights ({len(records)} updates): step {records[0]['step']}: {weights(records[0])}; "
        f"step {records[-1]['step']}: {weights(records[-1])}"
    )


def data_finding(results: dict[str, Any], domain: str = "math") -> str:
    """What the verified-only against unverified comparison found, whichever way it went."""
    rows = {(r["variant"], r["model"]): r for r in results["variants"]["table"]}
    verified, unverified = (rows.get((name, domain)) for name in DATA_VARIANTS)
    if verified is None or unverified is None:
        return f"{' / '.join(DATA_VARIANTS)}: no {domain} student in both"
    a, b = verified["pass@1"][domain], unverified["pass@1"][domain]
    problems = (results["steps"].get("corpus", {}).get("eval") or {}).get(domain)
    count = f" ({round(abs(b - a) * problems)} of {problems} problems)" if problems else ""
    found = (
        "the same score"
        if abs(b - a) < 1e-9
        else f"{'better' if b > a else 'worse'} by {abs(b - a):.3f}{count}"
    )
    return (
        f"verified only against unverified data, {domain} student: {a:.3f} on {verified['rows']} verified rows, "
        f"{b:.3f} on {unverified['rows']} rows with the failed ones kept: unverified is {found}; one corpus "
        "seed, so a difference of a few problems is within the noise (bench/demo_seeds.py shows the spread)"
    )


def run_demo(
    out: str | Path,
    recipe: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    start: str | None = None,
    progress: bool = True,
    log=print,
) -> dict[str, Any]:
    """Run the demo recipe (or another recipe with a `corpus` step) into `out`, score curation and the
    claim, and rewrite OUT/results.json."""
    from distill.demo.corpus import dropped_from_workspace, read_truth, score_curation
    from distill.errors import read_yaml
    from distill.recipe import RecipeError, run_recipe

    if recipe is None:
        recipe = demo_recipe(overrides)
    else:
        values = read_yaml(recipe, "recipe", RecipeError)
        if not isinstance(values, dict):
            raise RecipeError(f"{recipe}: a recipe is a mapping of steps")
        recipe = deep_update(values, overrides or {})
    if "corpus" not in recipe:
        raise RecipeError(
            "a demo recipe needs a `corpus` step: curation is scored against the corpus's truth"
        )
    results = run_recipe(recipe, out, start, progress=progress, log=log)
    root = Path(results["out"])
    truth = read_truth(root / "corpus" / "truth.jsonl")
    results["curation"] = score_curation(truth, dropped_from_workspace(root / "workspace"))
    results["claim"] = claim(results["eval"], list(recipe["domains"]))
    if "merge_search" in results["eval"]:
        results["claim_search"] = claim(results["eval"], list(recipe["domains"]), "merge_search")
    (root / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="the whole loop on a built-in synthetic corpus, on CPU in minutes",
        description="Writes a synthetic teacher corpus with planted defects, curates it (and scores the catch per "
        "defect type), trains a tiny base, one student per domain and merges them, then evaluates every model on "
        "held-out problems. Tables are printed and written to OUT/results.json.",
    )
    parser.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    parser.add_argument(
        "--recipe",
        help=f"a variant of the demo recipe (default: {DEMO_RECIPE.name}; it must keep the `corpus` step)",
    )
    parser.add_argument(
        "--from",
        dest="start",
        help="redo this step and every later one (corpus, curate, base, students, joint, merge, eval)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars (the per-step lines stay)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os

    from distill.recipe import eval_table

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    results = run_demo(args.out, args.recipe, start=args.start, progress=not args.quiet)
    print("\ncuration (planted defects of the synthetic corpus):")
    print(curation_table(results["curation"]))
    print("\nevaluation (pass@1 on held-out problems, greedy):")
    print(eval_table(results["eval"]))
    print("\nbranch-merge: gains over the base on each student's own domain:")
    print(claim_table(results["claim"]))
    print(verdict(results["claim"]))
    if DDK_VARIANT in results.get("variants", {}).get("runs", {}):
        print("\njoint baselines: rows mixed uniformly against DDK domain weights (gain over the base):")
        print(joint_table(results))
        print(ddk_weights_line(Path(results["out"])))
    if results.get("variants"):
        from distill.recipe.variants import comparison_table

        print("\nvariants (the models each variant made itself; pass@1 and what each was trained on):")
        print(comparison_table(results["variants"]["table"]))
        if set(DATA_VARIANTS) <= set(results["variants"]["runs"]):
            print(data_finding(results))
    if "claim_search" in results:
        print("\nmerge search (searched on the validation sets; shares on the held-out test set):")
        print(search_table(results))
        print(search_cost(results))
        print(verdict(results["claim_search"], "the searched merge"))
    print(
        f"\n{Path(results['out']) / 'results.json'}: {results['seconds']:.0f}s wall, "
        f"{results['cpu_seconds']:.0f}s CPU"
    )
    return 0
