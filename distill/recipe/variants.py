"""Recipe `variants:`: curation and training choices tested as experiments on the user's own data.

    variants:
      unverified: {curate: {stages: {verify: {keep: [pass, fail]}}}}
      ddk: {joint: {mix: {reweight: ddk, every: 50}}}

Each variant is the recipe with its mapping merged in key by key (`deep_update`: a mapping merges
into a mapping, anything else replaces, `null` removes a step such as `joint` or `merge`), run into
OUT/variants/<name>/ with the recipe's seeds and settings wherever it does not change them. A
variant's step whose fingerprint (settings, the steps it reads, the code) equals a step of the
recipe, or of an earlier variant, is not run again: its folder is a link to that step's folder. So
a variant that changes only the joint baseline trains and evaluates only that, and one that changes
curation redoes curation and what reads it. In a variant, `{out}` is the variant's folder and
`{main}` the recipe's (e.g. `base: {path: "{main}/base/model"}` keeps the recipe's own tiny base for
a curation variant, which would otherwise build and pretrain a base on its own data).

The comparison: every model that some variant evaluated itself (a shared one scores the same
everywhere), as the recipe made it (`recipe`) and as each variant that made its own did, with its
pass@1 per domain and the training rows, tokens and steps behind it (the model's summary.json).
Budgets follow the settings: with `epochs`, a variant with more rows takes more steps (the table
shows them); set `max_steps` to give every variant the same number of steps.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distill.recipe.engine import Step
from distill.recipe.schema import Recipe, RecipeError

FOLDER = "variants"  # under the run's output folder
MAIN = "recipe"  # the comparison's label for the recipe as written
# What a variant may not change: its identity, the machine it runs on, and what it is scored on.
FIXED = ("name", "variants", "threads", "parallel", "eval")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def deep_update(values: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`values` with `changes` merged in, mappings key by key (a copy; neither input is modified)."""
    merged = dict(values)
    for key, change in changes.items():
        if isinstance(change, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_update(merged[key], change)
        else:
            merged[key] = change
    return merged


def _unsubstitute(value: Any, out: str) -> Any:
    """`value` with the run's output folder written back as `{out}` (Recipe.load substituted it)."""
    return json.loads(json.dumps(value).replace(json.dumps(out)[1:-1], "{out}"))


def variant_recipes(recipe: Recipe) -> dict[str, Recipe]:
    """name -> the variant's Recipe (checked as the recipe is: unknown keys, bad settings)."""
    spec = recipe.values.get("variants")
    if not spec:
        return {}
    if not isinstance(spec, dict):
        raise RecipeError(f"`variants` must map names to overrides, not {type(spec).__name__}")
    raw = _unsubstitute({k: v for k, v in recipe.values.items() if k != "variants"}, str(recipe.out))
    found = {}
    for name, overrides in spec.items():
        if not isinstance(name, str) or not NAME.fullmatch(name) or name == MAIN:
            raise RecipeError(f"variant name {name!r}: use letters, digits, _ . - (and not {MAIN!r})")
        if not isinstance(overrides, dict):
            raise RecipeError(f"variants.{name} must be a mapping of recipe keys, not {overrides!r}")
        fixed = sorted(set(overrides) & set(FIXED))
        if fixed:
            raise RecipeError(f"variants.{name} may not change {fixed}: variants are scored alike")
        out = recipe.out / FOLDER / name
        values = json.loads(
            json.dumps(deep_update(raw, overrides)).replace("{main}", json.dumps(str(recipe.out))[1:-1])
        )
        found[name] = Recipe.load(values, out)
        found[name].folder = recipe.folder  # relative paths are the recipe file's
        extra = sorted(set(found[name].domains) - set(recipe.domains))
        if extra:
            raise RecipeError(f"variants.{name}: domains {extra} are not the recipe's {recipe.domains}")
    return found


def link(path: Path, target: Path) -> None:
    """Make `path` a relative link to `target` (replacing what was there)."""
    if path.is_symlink():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(os.path.relpath(target, path.parent), target_is_directory=True)


@dataclass
class Variants:
    """The variants of a recipe's run, planned: each one's Run, its entry of the report, and the steps
    of their own that are left to run (all variants', in step-group order)."""

    runs: dict[str, Any]
    report: dict[str, Any]
    steps: list[Step]


def plan_variants(main, log: Callable[[str], None]) -> Variants:
    """Plan every variant of `main` (a plan.Run whose base is made): a step whose fingerprint equals a
    step of the recipe, or of an earlier variant, becomes a link to that step's folder; the others are
    the variant's own, waiting on the steps they read (the shared ones are the recipe's own)."""
    import functools

    from distill.recipe.plan import Run, execute_step
    from distill.recipe.schema import GROUPS

    made = {(step.name, step.fingerprint): step for step in main.steps}
    runs = {MAIN: main}
    report: dict[str, Any] = {}
    pending: list[Step] = []
    for name, recipe in variant_recipes(main.recipe).items():
        # Planned now, not with the recipe: a step may read what the recipe's steps made ({main}).
        run = Run(recipe, progress=main.progress, codes=main.codes)
        own, shared, source = [], [], {}
        for step in run.steps:
            maker = made.get((step.name, step.fingerprint))
            if maker is not None and maker.out != step.out:
                link(step.out, maker.out)
                shared.append(step.name)
                source[id(step)] = maker
                continue
            if step.out.is_symlink():  # shared in an earlier run, its own now
                step.out.unlink()
            step.label = f"{name} {step.name}"
            step.worker = functools.partial(execute_step, recipe, codes=run.codes)
            step.after = [source.get(id(d), d) for d in step.after]
            own.append(step)
            made[(step.name, step.fingerprint)] = step
        log(f"variant {name}: {len(own)} steps of its own, {len(shared)} shared")
        runs[name] = run
        pending += own
        report[name] = {
            "out": str(run.out),
            "overrides": main.recipe.values["variants"][name],
            "own": [s.name for s in own],
            "shared": shared,
        }
    # All variants' own steps in step-group order, so that the training steps of different variants
    # (each reading only its own curation and base) are ready together.
    order = [g for g in dict.fromkeys(s.group for s in main.steps)] + [g for g in GROUPS]
    pending.sort(key=lambda step: order.index(step.group) if step.group in order else len(order))
    for n, step in enumerate(pending, 1):
        step.position = f"[{n}/{len(pending)}]"
    return Variants(runs, report, pending)


def variant_results(main, variants: Variants) -> dict[str, Any]:
    """The `variants` part of results.json, once their steps (and the recipe's) have run."""
    runs, report = variants.runs, variants.report
    for name, entry in report.items():
        entry["eval"] = runs[name].results()["eval"]
        entry["step_seconds"] = {
            step.name: step.seconds for step in runs[name].steps if step.name in entry["own"]
        }
    evals = {name: run.results()["eval"] for name, run in runs.items()}
    # The models some variant made itself: elsewhere they are links, and score the same.
    models = [label for label in main.models if any(f"eval/{label}" in v["own"] for v in report.values())]
    models += sorted({label for table in evals.values() for label in table} - set(main.models))
    rows = []
    for label in models:
        for name, run in runs.items():
            mine = name == MAIN or f"eval/{label}" in report[name]["own"]
            if mine and label in evals[name]:
                trained = trained_on(run.models.get(label))
                rows.append({"variant": name, "model": label, **trained, "pass@1": evals[name][label]})
    return {"runs": report, "table": rows}


def trained_on(model: Path | None) -> dict[str, Any]:
    """The rows, tokens and steps a model was trained on (its summary.json; None for a merge)."""
    summary = model / "summary.json" if model is not None else None
    if summary is None or not summary.is_file():
        return {"rows": None, "tokens": None, "steps": None}
    values = json.loads(summary.read_text())
    return {"rows": values["fit"]["kept"], "tokens": values["tokens"], "steps": values["steps"]}


def comparison_table(rows: list[dict[str, Any]]) -> str:
    """Variant x model rows, pass@1 per domain, and what each model was trained on."""
    from distill.generate.runner import format_table

    domains = sorted({d for row in rows for d in row["pass@1"]})
    return format_table(
        ("variant", "model", *domains, "rows", "tokens", "steps"),
        [
            (
                r["variant"],
                r["model"],
                *(r["pass@1"].get(d) for d in domains),
                r["rows"],
                r["tokens"],
                r["steps"],
            )
            for r in rows
        ],
    )
