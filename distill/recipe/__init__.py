"""`distillery run RECIPE.yaml`: curate -> base -> branch SFT per domain -> merge -> eval, resumable.

A recipe is one YAML file (see recipes/tinyr1.yaml for every key, distill/demo/demo.yaml for a CPU run):

    corpus: {...}            optional: write the built-in demo corpus (distill.demo.corpus) to OUT/corpus
    generate: {...}          optional: sample teacher traces (distillery generate) into OUT/generated
    inputs: [traces.jsonl]   trace files for `curate` (default: what corpus or generate wrote)
    curate: {...}            the curate config (format, source, workers, stages)
    base: {path: MODEL}      or {tiny: {...}, pretrain: {...}, pretrain_share: 0.3}: a tiny model built
                             here, optionally trained (SFT settings) on the shards of every domain, or on
                             that share of each domain's training rows
    threads: 1               optional: torch CPU threads (per process)
    parallel: 2              optional: train up to this many students (and the joint baseline) at once,
                             each in its own process (on CPU, one core each beats two cores on one);
                             refused with a `launch:` block, whose steps start their own processes
    domains: [math, code]    every domain a student is trained for
    sft: {config: FILE, defaults: {...}, domains: {math: {...}}}   SFT settings per student
         replay: 0.3         optional: each student also trains on this share of the other domains'
                             training rows (the base's own sample when equal to base.pretrain_share),
                             so that it does not forget them
    joint: {...}             optional: a baseline SFT'd from the base on all domains' shards together
    merge: {...} or FILE     a mergekit-style config; models are named `base`, `students/<domain>`, `joint`
    eval: {benches: [...], sampling: {...}, backend: hf, ...}
    launch: {nproc_per_node: 8, retries: 2}   optional: SFT steps under torchrun or Ray Train
                             (distill/recipe/launch.py)

Paths in a recipe file are relative to the file; `{out}` stands for the run's output folder.

The package, one job per module:

    schema.py        the recipe's keys and every check made before any work (Recipe, RecipeError)
    engine.py        resumable steps: markers, fingerprints, running them (side by side in processes)
    plan.py          which steps a recipe has and what each reads (Run, run_recipe)
    steps/<name>.py  what each step does: corpus, generate, curate, base, student, joint, merge, evaluate
    cli.py           `distillery run`
"""

from distill.recipe.cli import eval_table
from distill.recipe.plan import Run, run_recipe
from distill.recipe.schema import Recipe, RecipeError

__all__ = ["Recipe", "RecipeError", "Run", "eval_table", "run_recipe"]
