"""A recipe's steps over one output folder: which steps there are, what each reads (so what its
fingerprint chains to), and running them with the engine.

    corpus -> generate -> curate -> base -> students/<domain> ... -> merge -> eval/<model>
                                        |        \\-> redi/<domain> (REDI) ----/
                                        \\-> joint ------------------------/
"""

from __future__ import annotations

import dataclasses
import functools
import json
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from distill.errors import model_folder
from distill.recipe.engine import MARKERS, Step, file_digest, fingerprint, run_steps, step_code
from distill.recipe.schema import GROUPS, Recipe, RecipeError
from distill.recipe.steps import base, corpus, curate, evaluate, generate, joint, merge, redi, student

# With `parallel`, of the steps ready at once the joint baseline (the most data) starts first.
FIRST = ("joint",)
# The steps the variants are planned after: a variant may start from what they made ({main}/base).
BEFORE_VARIANTS = ("corpus", "generate", "curate", "base")
# The module that computes each step group: its code (and what it imports) is in the fingerprint.
STEP_MODULES = {
    "corpus": corpus,
    "generate": generate,
    "curate": curate,
    "base": base,
    "students": student,
    "redi": redi,
    "joint": joint,
    "merge": merge,
    "eval": evaluate,
}


class Run:
    """The steps of one recipe over one output folder."""

    def __init__(self, recipe: Recipe, progress: bool = True, codes: dict[str, str] | None = None):
        self.recipe = recipe
        self.codes = dict(codes or {})  # step module -> step_code, computed once and handed to workers
        self.out = recipe.out
        self.progress = progress
        self.steps: list[Step] = []
        self.models: dict[str, Path] = {}  # label -> model folder, in table order
        self.evals: dict[str, Path] = {}  # label -> eval report file
        if not progress:
            _hide_library_progress_bars()
        self._plan()

    def _add(
        self,
        name: str,
        group: str,
        out: Path,
        settings: Any,
        after: list[Step],
        body: Callable[[], dict[str, Any]],
    ) -> Step:
        # The step's own module (steps/<name>.py); a group without one is covered by this module,
        # which imports every step module.
        module = STEP_MODULES[group].__name__ if group in STEP_MODULES else __name__
        if module not in self.codes:
            self.codes[module] = step_code(module)
        code = self.codes[module]
        fingerprinted = fingerprint(name, settings, after, self.out, code)
        step = Step(name, group, out, fingerprinted, body, self.out / MARKERS, after=list(after))
        self.steps.append(step)
        return step

    def _plan(self) -> None:
        r, progress = self.recipe, self.progress
        made = []
        if "corpus" in r.values:
            corpus.config(r)
            made.append(
                self._add(
                    "corpus", "corpus", self.out / "corpus", r.section("corpus"), [], lambda: corpus.run(r)
                )
            )
        if "generate" in r.values:
            r.sampling("generate")
            settings = {**r.section("generate"), "digests": [_digest(p) for p in generate.prompt_files(r)]}
            made.append(
                self._add(
                    "generate",
                    "generate",
                    self.out / "generated",
                    settings,
                    made,
                    lambda: generate.run(r, progress),
                )
            )
        files = curate.inputs(r)
        # The user's own files: a changed file must redo curation (files written by a step are
        # covered by that step's fingerprint).
        settings = {
            "config": r.section("curate"),
            "inputs": [str(p) for p in files],
            "digests": [_digest(p) for p in files if not str(p).startswith(str(self.out))],
        }
        curated = self._add(
            "curate", "curate", r.workspace, settings, made, lambda: curate.run(r, files, progress)
        )

        spec = r.base()
        if "path" in spec:
            config = r.base_model / "config.json"
            stamp = config.stat().st_mtime_ns if config.is_file() else None
            settings, after = {"path": str(r.base_model), "stamp": stamp}, []
        else:
            settings, after = spec, [curated]
        base_step = self._add(
            "base", "base", self.out / "base", settings, after, lambda: base.run(r, progress)
        )
        self.models["base"] = r.base_model
        producers = {"base": base_step}

        replay = r.sft().get("replay", 0.0)
        students = []
        for domain in r.domains:
            settings = r.student_settings(domain)
            students.append(
                self._add(
                    f"students/{domain}",
                    "students",
                    self.out / "students" / domain,
                    {"sft": settings, "replay": replay} if replay else settings,
                    [curated, base_step],
                    lambda d=domain: student.run(r, d, progress),
                )
            )
            self.models[domain] = self.out / "students" / domain
            producers[domain] = students[-1]
        for domain in r.redi_domains():  # REDI on the student's pairs, after its SFT
            label = f"{domain}-redi"
            settings = {"sft": r.redi_settings(domain), "pairs": r.redi_pairs()}
            producers[label] = self._add(
                f"redi/{domain}",
                "redi",
                self.out / "redi" / domain,
                settings,
                [curated, producers[domain]],
                lambda d=domain: redi.run(r, d, progress),
            )
            self.models[label] = self.out / "redi" / domain
        if r.values.get("merge") and merge.has_fixed_plan(r):  # a variant may drop it (merge: null)
            producers["merged"] = self._add(
                "merge",
                "merge",
                self.out / "merged",
                merge.plan(r),
                [base_step, *students],
                lambda: merge.run(r),
            )
            self.models["merged"] = self.out / "merged"
        if r.values.get("merge") and merge.search_settings(r) is not None:
            # The search scores the students on the val split: it reads curation, the base and them.
            after = [curated, base_step, *students]
            tag = fingerprint("merge_search", None, after, self.out)
            label = "merge_search" if "merged" in producers else "merged"
            out = self.out / ("merge_search/model" if label == "merge_search" else "merged")
            producers[label] = self._add(
                label if label == "merge_search" else "merge",
                "merge",
                out,
                dataclasses.asdict(merge.search_plan(r)),
                after,
                lambda o=out, t=tag: merge.run_search(r, o, t, progress),
            )
            self.models[label] = out
        if r.values.get("joint"):
            producers["joint"] = self._add(
                "joint",
                "joint",
                self.out / "joint",
                r.joint_settings(),
                [curated, base_step],
                lambda: joint.run(r, progress),
            )
            self.models["joint"] = self.out / "joint"

        spec = r.section("eval")
        if spec.get("benches"):
            r.sampling("eval")
            for label, model in self.models.items():
                out = self.out / "eval" / label
                self._add(
                    f"eval/{label}",
                    "eval",
                    out,
                    spec,
                    [producers[label]],
                    lambda m=model, o=out: evaluate.run(r, m, o, progress),
                )
                self.evals[label] = out / "report.json"

        for n, step in enumerate(self.steps, 1):
            step.position = f"[{n}/{len(self.steps)}]"

    def run(self, start: str | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
        """Run every step not already done (all of them from group `start` on) and write results.json."""
        if start is not None and start not in GROUPS:
            raise RecipeError(f"--from {start!r}: no such step (steps: {', '.join(GROUPS)})")
        redo = set(GROUPS[GROUPS.index(start) :]) if start else set()
        # What planning cannot check (the plan of a recipe is valid without its model or data),
        # checked before the first step rather than after hours of curation and training.
        if "path" in self.recipe.base():
            model_folder(self.recipe.base_model, "base model")
        evaluate.benches(self.recipe, written_by_the_run=False)
        if self.recipe.values.get("variants"):
            from distill.recipe.variants import variant_recipes

            for variant in variant_recipes(self.recipe).values():  # a bad one fails now, not after the recipe
                Run(variant, progress=False, codes=self.codes)
        set_threads(self.recipe.values.get("threads"))
        self.out.mkdir(parents=True, exist_ok=True)
        began, cpu_began = time.perf_counter(), cpu_seconds()
        parallel = int(self.recipe.values.get("parallel") or 1)
        worker = functools.partial(execute_step, self.recipe, codes=self.codes)
        if not self.recipe.values.get("variants"):
            executed = run_steps(in_start_order(self.steps), redo, parallel, worker, log)
            results = self.results()
        else:
            # The variants' steps run with the recipe's own after its base, so that with `parallel`
            # a variant's training fills a core the recipe's merge search or evaluations leave free.
            from distill.recipe.variants import plan_variants, variant_results

            first = [s for s in self.steps if s.group in BEFORE_VARIANTS]
            executed = run_steps(first, redo, parallel, worker, log)
            variants = plan_variants(self, log)
            rest = in_start_order([s for s in self.steps if s not in first])
            executed += run_steps(rest + in_start_order(variants.steps), redo, parallel, worker, log)
            results = self.results()
            results["variants"] = variant_results(self, variants)
        # This invocation's time (near 0 when every step is reused), then every step's own seconds
        # from when it ran, this time or in an earlier (resumed) run: together they are the cost.
        results["seconds"] = round(time.perf_counter() - began, 1)
        results["cpu_seconds"] = round(cpu_seconds() - cpu_began, 1)
        results["steps_executed"] = [step.name for step in executed]
        results["step_seconds"] = {step.name: step.seconds for step in self.steps}
        (self.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        from curate.report.run import write_run_report

        write_run_report(self.out)  # OUT/report/index.html: loss curves, eval table, merge retention
        return results

    def results(self) -> dict[str, Any]:
        """`eval`: model label -> domain -> pass@1; `steps`: each step's summary."""
        table = {}
        for label, path in self.evals.items():
            if path.is_file():
                domains = json.loads(path.read_text())["domains"]
                table[label] = {d: v["pass@1"] for d, v in domains.items()}
        return {
            "out": str(self.out),
            "eval": table,
            "models": {k: str(v) for k, v in self.models.items()},
            "steps": {s.name: s.summary for s in self.steps},
        }


def in_start_order(steps: list[Step]) -> list[Step]:
    """`steps` with those of the FIRST groups ahead (a stable sort: the rest keep their order)."""
    return sorted(steps, key=lambda s: FIRST.index(s.group) if s.group in FIRST else len(FIRST))


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (verifier and sandbox workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _digest(path: Path) -> str:
    if not path.is_file():
        raise RecipeError(f"input {path} not found")
    return file_digest(path)


def _hide_library_progress_bars() -> None:
    # transformers draws its own bars when loading and saving weights, which --quiet should hide too.
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()


def set_threads(threads: Any) -> None:
    if threads:
        import torch

        # Small models on a few busy cores: one thread each often beats several contending ones.
        torch.set_num_threads(int(threads))


def execute_step(recipe: Recipe, name: str, codes: dict[str, str] | None = None) -> None:
    """In a worker process: plan `recipe` again (with the parent's step `codes`) and run its step
    `name` (no progress bars: steps share the terminal)."""
    set_threads(recipe.values.get("threads"))
    step = next(s for s in Run(recipe, progress=False, codes=codes).steps if s.name == name)
    step.execute()


def run_recipe(
    source: str | Path | dict[str, Any],
    out: str | Path | None = None,
    start: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Load a recipe (file or mapping) and run it into `out`; returns what results.json holds."""
    return Run(Recipe.load(source, out), progress=progress).run(start, log)
