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
                             each in its own process (on CPU, one core each beats two cores on one)
    domains: [math, code]    default: every domain the workspace has shards for
    sft: {config: FILE, defaults: {...}, domains: {math: {...}}}   SFT settings per student
         replay: 0.3         optional: each student also trains on this share of the other domains'
                             training rows (the base's own sample when equal to base.pretrain_share),
                             so that it does not forget them
    joint: {...}             optional: a baseline SFT'd from the base on all domains' shards together
    merge: {...} or FILE     a mergekit-style config; models are named `base`, `students/<domain>`, `joint`
    eval: {benches: [...], sampling: {...}, backend: hf, ...}

Paths in a recipe file are relative to the file; `{out}` stands for the run's output folder.

Every step writes its output into its own folder of OUT and then a marker (`.step.json`) holding the
fingerprint of what it was made from: its own settings and the fingerprints of the steps it reads.
A rerun skips a step whose marker matches; a step that was killed midway is started again (SFT
resumes from its own checkpoints); a step whose settings changed is redone, and so is everything
downstream of it, because their fingerprints chain.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MARKER = ".step.json"
SFT_KEYS = {"config", "defaults", "domains", "replay"}
RECIPE_KEYS = {"name", "threads", "parallel", "corpus", "generate", "inputs", "curate", "base", "domains", "sft", "joint", "merge", "eval"}
# Step groups in run order, for --from.
GROUPS = ("corpus", "generate", "curate", "base", "students", "joint", "merge", "eval")


class RecipeError(Exception):
    """A recipe the user must fix: a missing key, a bad path, an unknown domain."""

    user_error = True


def _hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (verifier and sandbox workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _substitute(value: Any, out: str) -> Any:
    """`value` with every `{out}` in its strings replaced by the output folder."""
    if isinstance(value, str):
        return value.replace("{out}", out)
    if isinstance(value, dict):
        return {k: _substitute(v, out) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, out) for v in value]
    return value


@dataclass
class Recipe:
    """A parsed recipe: the raw mapping, with paths resolved and `{out}` substituted."""

    values: dict[str, Any]
    out: Path
    base_dir: Path

    @classmethod
    def load(cls, source: str | Path | dict[str, Any], out: str | Path | None = None) -> Recipe:
        import yaml

        if isinstance(source, dict):
            values, base_dir, default_out = dict(source), Path.cwd(), "run_out"
        else:
            path = Path(source)
            try:
                values = yaml.safe_load(path.read_text())
            except (OSError, yaml.YAMLError) as error:
                raise RecipeError(f"{path}: cannot read the recipe ({error})") from error
            if not isinstance(values, dict):
                raise RecipeError(f"{path}: a recipe is a mapping of steps")
            base_dir, default_out = path.resolve().parent, f"runs/{path.stem}"
        unknown = sorted(set(values) - RECIPE_KEYS)
        if unknown:
            raise RecipeError(f"unknown recipe key(s) {unknown}; known: {sorted(RECIPE_KEYS)}")
        if "base" not in values:
            raise RecipeError("the recipe names no `base` model (base: {path: ...} or base: {tiny: {...}})")
        if not values.get("inputs") and not {"corpus", "generate"} & set(values):
            raise RecipeError("the recipe names no `inputs` (trace files), no `generate` step and no `corpus`")
        out_dir = Path(out or default_out).resolve()
        return cls(_substitute(values, str(out_dir)), out_dir, base_dir)

    def path(self, text: str) -> Path:
        """A path from the recipe; a relative one is taken from the recipe's folder."""
        path = Path(text).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def section(self, key: str) -> dict[str, Any]:
        value = self.values.get(key) or {}
        if not isinstance(value, dict):
            raise RecipeError(f"`{key}` must be a mapping, not {type(value).__name__}")
        return value


@dataclass
class Step:
    """One resumable unit of work: `run()` fills `out` and returns a short summary for the table."""

    name: str
    group: str
    out: Path
    fingerprint: str
    run: Callable[[], dict[str, Any]]
    summary: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None  # how long the step took when it ran (kept in its marker)

    def done(self) -> bool:
        marker = self.out / MARKER
        if not marker.is_file():
            return False
        saved = json.loads(marker.read_text())
        if saved.get("fingerprint") != self.fingerprint:
            return False
        self.summary, self.seconds = saved.get("summary", {}), saved.get("seconds")
        return True

    def execute(self) -> None:
        pending = self.out / ".pending.json"
        if self.out.exists():
            # A killed attempt with the same inputs is continued (SFT resumes from its checkpoints);
            # anything else in the folder came from other settings and is cleared first.
            same = pending.is_file() and json.loads(pending.read_text()).get("fingerprint") == self.fingerprint
            if not same:
                shutil.rmtree(self.out)
        self.out.mkdir(parents=True, exist_ok=True)
        pending.write_text(json.dumps({"fingerprint": self.fingerprint}))
        started = time.perf_counter()
        self.summary = self.run()
        self.seconds = round(time.perf_counter() - started, 1)
        marker = {"fingerprint": self.fingerprint, "summary": self.summary, "seconds": self.seconds}
        (self.out / MARKER).write_text(json.dumps(marker, indent=2))
        pending.unlink()


def _sft_config(values: dict[str, Any], source: str):
    from distill.sft.config import SFTConfig

    return SFTConfig.from_dict(values, source=source)


def _train(config, data: Path, base: Path, out: Path, progress: bool) -> dict[str, Any]:
    from distill.sft.trainer import train

    result = train(config, data, base, out, resume=True, progress=progress)
    return {
        "samples": result.fit.kept,
        "steps": result.steps,
        "first_loss": result.first_loss,
        "last_loss": result.last_loss,
        "val_loss": result.val_loss,
        "tokens_per_s": round(result.tokens_per_s),
        "train_seconds": round(result.seconds, 1),
    }


def _link_mixed(shards: Path, out: Path, shares: dict[str, float], val: list[str]) -> Path:
    """A training folder: each domain's train-* parquet files, as links to its shards or, with a share
    below 1, that share of its rows (a fixed sample, the same for every caller) written anew; and the
    val-* files of the domains in `val`."""
    import polars as pl

    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.parquet"):
        old.unlink()
    for domain, share in shares.items():
        files = sorted((shards / domain).glob("*.parquet"))
        for file in files:
            split, _, rest = file.name.partition("-")
            if (split == "train" and share >= 1.0) or (split != "train" and domain in val):
                (out / f"{split}-{domain}-{rest}").symlink_to(file.resolve())
        if share < 1.0:
            rows = pl.concat([pl.read_parquet(f) for f in files if f.name.startswith("train-")])
            rows.sample(fraction=share, seed=0).write_parquet(out / f"train-{domain}-00000.parquet")
    return out


def _shard_texts(shards: Path, domains: list[str]) -> list[str]:
    """Every message text of the training shards: what a tiny base's tokenizer is trained on."""
    import polars as pl

    texts: list[str] = []
    for domain in domains:
        for file in sorted((shards / domain).glob("train-*.parquet")):
            for conversation in pl.read_parquet(file, columns=["messages"])["messages"].to_list():
                texts.extend(message["content"] for message in conversation)
    return texts


class Run:
    """The steps of one recipe over one output folder."""

    def __init__(self, recipe: Recipe, progress: bool = True):
        self.recipe = recipe
        self.out = recipe.out
        self.progress = progress
        self.steps: list[Step] = []
        self.ws = self.out / "workspace"
        self.models: dict[str, Path] = {}  # label -> model folder, in table order
        self.evals: dict[str, Path] = {}  # label -> eval report file
        if not progress:
            _hide_library_progress_bars()
        self._plan()

    # -- planning ---------------------------------------------------------------------------------

    def _add(self, name: str, group: str, out: Path, settings: Any, after: list[Step], run) -> Step:
        # Hashed with the output folder written as `{out}`, so that a run folder can be moved or copied.
        text = json.dumps(settings, sort_keys=True, default=str).replace(str(self.out), "{out}")
        fingerprint = _hash({"step": name, "settings": text, "after": [s.fingerprint for s in after]})
        step = Step(name, group, out, fingerprint, run)
        self.steps.append(step)
        return step

    def _plan(self) -> None:
        r = self.recipe
        corpus = None
        if "corpus" in r.values:
            corpus = self._add("corpus", "corpus", self.out / "corpus", r.section("corpus"), [], self._write_corpus)
        made = [corpus] if corpus else []
        if "generate" in r.values:
            spec = r.section("generate")
            prompts = [r.path(p) for p in spec.get("prompts") or []]
            if not spec.get("teacher") or not prompts:
                raise RecipeError("`generate` needs a `teacher` and a list of `prompts` files")
            settings = {**spec, "digests": [self._digest(p) for p in prompts]}
            made.append(self._add("generate", "generate", self.out / "generated", settings, made,
                                  lambda: self._generate(spec, prompts)))
        made_by = "generated" if "generate" in r.values else "corpus"
        default = [str(self.out / made_by / "traces.jsonl")]
        inputs = [r.path(p) for p in (r.values.get("inputs") or default)]
        curate_settings = {"config": r.section("curate"), "inputs": [str(p) for p in inputs]}
        # The user's own files: a changed file must redo curation (files written by a step are
        # covered by that step's fingerprint).
        curate_settings["digests"] = [self._digest(p) for p in inputs if not str(p).startswith(str(self.out))]
        curate = self._add("curate", "curate", self.ws, curate_settings, made, lambda: self._curate(inputs))

        base_spec = r.section("base")
        if "path" in base_spec:
            base_dir = r.path(base_spec["path"])
            config = base_dir / "config.json"
            stamp = config.stat().st_mtime_ns if config.is_file() else None
            base_step = self._add("base", "base", self.out / "base", {"path": str(base_dir), "stamp": stamp}, [],
                                  lambda: {"model": str(base_dir)})
            self.base_dir = base_dir
        elif "tiny" in base_spec:
            share = base_spec.get("pretrain_share", 1.0)
            if not isinstance(share, int | float) or not 0.0 < share <= 1.0:
                raise RecipeError(f"base.pretrain_share must be a number in (0, 1], not {share!r}")
            base_step = self._add("base", "base", self.out / "base", base_spec, [curate], lambda: self._tiny_base(
                base_spec))
            self.base_dir = self.out / "base" / ("model" if base_spec.get("pretrain") else "init")
        else:
            raise RecipeError("`base` needs `path` (a model folder) or `tiny` (a model built here)")
        self.models["base"] = self.base_dir
        producers = {"base": base_step}

        sft = r.section("sft")
        unknown = sorted(set(sft) - SFT_KEYS)
        if unknown:
            raise RecipeError(f"unknown sft key(s) {unknown}; known: {sorted(SFT_KEYS)}")
        replay = sft.get("replay", 0.0)
        if not isinstance(replay, int | float) or not 0.0 <= replay <= 1.0:
            raise RecipeError(f"sft.replay must be a number in [0, 1], not {replay!r}")
        students = []
        for domain in self._domains():
            out = self.out / "students" / domain
            settings = self._student_settings(sft, domain)
            fingerprinted = {"sft": settings, "replay": replay} if replay else settings
            students.append(self._add(f"students/{domain}", "students", out, fingerprinted, [curate, base_step],
                                      lambda d=domain, s=settings, o=out: self._student(d, s, o, replay)))
            self.models[domain] = out
            producers[domain] = students[-1]
        merge = self._add("merge", "merge", self.out / "merged", self._merge_config(), [base_step, *students],
                          self._merge)
        self.models["merged"], producers["merged"] = self.out / "merged", merge
        if r.values.get("joint"):
            settings = self._joint_settings(sft)
            producers["joint"] = self._add("joint", "joint", self.out / "joint", settings, [curate, base_step],
                                           lambda: self._joint(settings))
            self.models["joint"] = self.out / "joint"

        eval_spec = r.section("eval")
        if eval_spec.get("benches"):
            for label, model in self.models.items():
                out = self.out / "eval" / label
                self._add(f"eval/{label}", "eval", out, eval_spec, [producers[label]],
                          lambda m=model, o=out: self._evaluate(m, o))
                self.evals[label] = out / "report.json"

    def _digest(self, path: Path) -> str:
        if not path.is_file():
            raise RecipeError(f"input {path} not found")
        return _file_digest(path)

    def _domains(self) -> list[str]:
        domains = self.recipe.values.get("domains")
        if domains:
            return list(domains)
        # Not known before curation: the student steps are planned from the recipe, so ask for them.
        raise RecipeError("the recipe must list its `domains` (e.g. domains: [math, code, science])")

    def _student_settings(self, sft: dict[str, Any], domain: str) -> dict[str, Any]:
        values = self._sft_file(sft)
        values.update(sft.get("defaults") or {})
        per_domain = values.get("domain_epochs") or {}
        if domain in per_domain and "epochs" not in ((sft.get("domains") or {}).get(domain) or {}):
            values["epochs"] = per_domain[domain]
        values.update((sft.get("domains") or {}).get(domain) or {})
        _sft_config(values, f"sft settings for {domain}")  # fail at planning time, not after an hour
        return values

    def _joint_settings(self, sft: dict[str, Any]) -> dict[str, Any]:
        values = self._sft_file(sft)
        values.update(sft.get("defaults") or {})
        joint = self.recipe.values.get("joint")
        values.update(joint if isinstance(joint, dict) else {})
        _sft_config(values, "joint sft settings")
        return values

    def _sft_file(self, sft: dict[str, Any]) -> dict[str, Any]:
        if not sft.get("config"):
            return {}
        from distill.sft.config import SFTConfig

        return SFTConfig.from_yaml(self.recipe.path(sft["config"])).to_dict()

    def _merge_config(self) -> dict[str, Any]:
        """The merge config with `base`, `students/<domain>` and `joint` replaced by model folders."""
        import yaml

        spec = self.recipe.values.get("merge")
        if not spec:
            raise RecipeError("the recipe has no `merge` plan")
        if isinstance(spec, str):
            spec = yaml.safe_load(self.recipe.path(spec).read_text())
        step_names = {s.get("name") for s in spec.get("steps", []) if isinstance(s, dict)}

        def model(ref: Any) -> Any:
            if not isinstance(ref, str) or ref in step_names:
                return ref
            if ref == "base":
                return str(self.base_dir)
            if ref == "joint" or ref.startswith("students/"):
                if ref.startswith("students/") and ref.split("/", 1)[1] not in self._domains():
                    raise RecipeError(f"merge plan names {ref!r}, but the recipe's domains are {self._domains()}")
                return str(self.out / ref)
            return str(self.recipe.path(ref))

        def rewrite(block: dict[str, Any]) -> dict[str, Any]:
            block = dict(block)
            if "base_model" in block:
                block["base_model"] = model(block["base_model"])
            if "models" in block:
                block["models"] = [{**m, "model": model(m["model"])} if isinstance(m, dict) else model(m)
                                   for m in block["models"]]
            return block

        if "steps" in spec:
            return {**spec, "steps": [rewrite(s) for s in spec["steps"]]}
        return rewrite(spec)

    # -- the steps ------------------------------------------------------------------------------------

    def _write_corpus(self) -> dict[str, Any]:
        from distill.demo.corpus import CorpusConfig, write_corpus

        files = write_corpus(self.out / "corpus", CorpusConfig(**self.recipe.section("corpus")))
        rows = sum(1 for _ in files.traces.open())
        return {"rows": rows, "eval": {d: sum(1 for _ in p.open()) for d, p in files.eval_sets.items()}}

    def _generate(self, spec: dict[str, Any], prompts: list[Path]) -> dict[str, Any]:
        """Teacher traces for every prompt file; with `budget`, rejection sampling up to that many
        samples per problem. Finished requests are cached, so a killed step does not pay twice."""
        from distill.generate.base import SamplingParams, load_backend
        from distill.generate.cache import RequestCache
        from distill.generate.prompts import read_prompts
        from distill.generate.rejection import rejection_sample
        from distill.generate.runner import sample_items, trace_row, write_jsonl

        out = self.out / "generated"
        items = [item for path in prompts for item in read_prompts(str(path))]
        params = SamplingParams(**(spec.get("sampling") or {}))
        style = spec.get("style", "r1")
        backend = load_backend(spec.get("backend", "hf"), spec["teacher"], **(spec.get("backend_options") or {}))
        with RequestCache(out / "cache.sqlite") as cache:
            try:
                if spec.get("budget"):
                    rows, _, stats = rejection_sample(backend, items, params, spec["budget"], style, cache,
                                                      self.progress, spec.get("workers", 2))
                else:
                    results, stats = sample_items(backend, items, params, style, None, cache, self.progress)
                    rows = [trace_row(items[i], style, n, c, spec["teacher"], params) for i, n, c in results]
            finally:
                backend.close()
        write_jsonl(rows, out / "traces.jsonl")
        return {"problems": len(items), "traces": len(rows), "cached": stats.cached, "generated": stats.generated}

    def _curate(self, inputs: list[Path]) -> dict[str, Any]:
        from curate.pipeline import curate

        config = self.recipe.section("curate")
        results = curate([str(p) for p in inputs], self.ws, config, progress=self.progress)
        first, last = results[0], results[-1]
        shards = {d.name: len(list(d.glob("train-*.parquet"))) for d in sorted((self.ws / "shards").iterdir())
                  if d.is_dir()} if (self.ws / "shards").is_dir() else {}
        return {"rows_in": first.get("rows_in"), "rows_out": last.get("rows_out"), "domains": sorted(shards)}

    def _tiny_base(self, spec: dict[str, Any]) -> dict[str, Any]:
        from distill.sft.tiny import make_tiny_base

        domains = self._domains()
        texts = _shard_texts(self.ws / "shards", domains)
        tiny = dict(spec["tiny"])
        init = make_tiny_base(self.out / "base" / "init", texts, **tiny)
        summary: dict[str, Any] = {"tokenizer_texts": len(texts)}
        if spec.get("pretrain"):
            share = float(spec.get("pretrain_share", 1.0))
            mixed = _link_mixed(self.ws / "shards", self.out / "base" / "mixed", dict.fromkeys(domains, share), domains)
            config = _sft_config(dict(spec["pretrain"]), "base pretrain settings")
            summary.update(_train(config, mixed, init, self.out / "base" / "model", self.progress))
        return summary

    def _student(self, domain: str, settings: dict[str, Any], out: Path, replay: float) -> dict[str, Any]:
        data = self.ws / "shards" / domain
        if not any(data.glob("train-*.parquet")):
            raise RecipeError(f"{self.ws}: curation left no training shards for domain {domain!r}")
        if replay:
            # The same seeded sample as the base's pretraining when replay == base.pretrain_share.
            shares = {domain: 1.0, **{other: replay for other in self._domains() if other != domain}}
            data = _link_mixed(self.ws / "shards", self.out / "student_data" / domain, shares, [domain])
        return _train(_sft_config(settings, domain), data, self.base_dir, out, self.progress)

    def _joint(self, settings: dict[str, Any]) -> dict[str, Any]:
        domains = self._domains()
        mixed = _link_mixed(self.ws / "shards", self.out / "joint_data", dict.fromkeys(domains, 1.0), domains)
        return _train(_sft_config(settings, "joint"), mixed, self.base_dir, self.out / "joint", self.progress)

    def _merge(self) -> dict[str, Any]:
        import yaml

        import merge

        path = self.out / "merged" / "merge.yaml"
        path.write_text(yaml.safe_dump(self._merge_config(), sort_keys=False))
        steps = merge.run_config(path, self.out / "merged", steps_dir=self.out / "merge_steps")
        return {"steps": [s.name for s in steps], "methods": [s.method for s in steps]}

    def _evaluate(self, model: Path, out: Path) -> dict[str, Any]:
        from distill.evaluate import evaluate, resolve_bench
        from distill.generate.base import SamplingParams
        from distill.generate.runner import write_jsonl

        spec = self.recipe.section("eval")
        benches = []
        for bench in spec["benches"]:
            name, sep, path = str(bench).partition("=")
            benches.append(resolve_bench(f"{name}={self.recipe.path(path)}" if sep else bench, spec.get("data_dir")))
        params = SamplingParams(**(spec.get("sampling") or {}))
        report = evaluate(str(model), benches, params, backend=spec.get("backend", "hf"),
                          backend_options=spec.get("backend_options"), style=spec.get("style", "r1"),
                          limit=spec.get("limit"), workers=spec.get("workers", 2), progress=self.progress)
        (out / "report.json").write_text(json.dumps(report.as_dict(), indent=2) + "\n")
        write_jsonl(report.samples, out / "samples.jsonl")
        return {d: v["pass@1"] for d, v in report.domains.items()}

    # -- running --------------------------------------------------------------------------------------

    def run(self, start: str | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
        """Run every step not already done (all of them from group `start` on) and write results.json."""
        if start is not None and start not in GROUPS:
            raise RecipeError(f"--from {start!r}: no such step (steps: {', '.join(GROUPS)})")
        forced = set(GROUPS[GROUPS.index(start):]) if start else set()
        _set_threads(self.recipe.values.get("threads"))
        self.out.mkdir(parents=True, exist_ok=True)
        began, cpu_began = time.perf_counter(), _cpu_seconds()
        numbers = {step.name: f"[{n}/{len(self.steps)}] {step.name}" for n, step in enumerate(self.steps, 1)}
        pending = []
        for step in self.steps:
            if step.group not in forced and step.done():
                log(f"{numbers[step.name]}: done earlier, skipped")
                continue
            if step.out.exists() and step.group in forced:
                shutil.rmtree(step.out)
            pending.append(step)
        parallel = int(self.recipe.values.get("parallel") or 1)
        while pending:
            step = pending.pop(0)
            if parallel == 1 or step.group not in TRAINING:
                step.execute()
                log(f"{numbers[step.name]}: {_describe(step.summary)} ({step.seconds:.1f}s)")
                continue
            # Students and the joint baseline read only the shards and the base: they train side by side,
            # the joint baseline (the most data) first.
            batch = [step, *(s for s in pending if s.group in TRAINING)]
            pending = [s for s in pending if s not in batch]
            batch.sort(key=lambda s: s.group != "joint")
            for done in self._execute_in_processes(batch, parallel):
                log(f"{numbers[done.name]}: {_describe(done.summary)} ({done.seconds:.1f}s)")
        results = self.results()
        results["seconds"] = round(time.perf_counter() - began, 1)
        results["cpu_seconds"] = round(_cpu_seconds() - cpu_began, 1)
        # Seconds of every step when it ran, this time or in an earlier (resumed) run.
        results["step_seconds"] = {step.name: step.seconds for step in self.steps}
        (self.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        return results

    def _execute_in_processes(self, steps: list[Step], parallel: int) -> Iterator[Step]:
        """Run `steps` in up to `parallel` fresh processes (each plans the recipe again and runs one
        step); yields each step as it finishes."""
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        context = multiprocessing.get_context("spawn")  # torch and fork do not mix
        with ProcessPoolExecutor(min(parallel, len(steps)), mp_context=context) as pool:
            futures = {pool.submit(_execute_step, self.recipe, step.name): step for step in steps}
            for future in as_completed(futures):
                future.result()
                step = futures[future]
                if not step.done():
                    raise RecipeError(f"{step.name}: the training process ended without finishing the step")
                yield step

    def results(self) -> dict[str, Any]:
        """`eval`: model label -> domain -> pass@1; `steps`: each step's summary."""
        table = {}
        for label, path in self.evals.items():
            if path.is_file():
                domains = json.loads(path.read_text())["domains"]
                table[label] = {d: v["pass@1"] for d, v in domains.items()}
        return {"out": str(self.out), "eval": table, "models": {k: str(v) for k, v in self.models.items()},
                "steps": {s.name: s.summary for s in self.steps}}


TRAINING = ("students", "joint")


def _hide_library_progress_bars() -> None:
    # transformers draws its own bars when loading and saving weights, which --quiet should hide too.
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()


def _set_threads(threads: Any) -> None:
    if threads:
        import torch

        # Small models on a few busy cores: one thread each often beats several contending ones.
        torch.set_num_threads(int(threads))


def _execute_step(recipe: Recipe, name: str) -> None:
    """In a worker process: plan `recipe` again and run its step `name` (no progress bars: steps share the terminal)."""
    _set_threads(recipe.values.get("threads"))
    step = next(s for s in Run(recipe, progress=False).steps if s.name == name)
    step.execute()


def _describe(summary: dict[str, Any]) -> str:
    """A step's summary in one line; training steps show loss and tokens/s."""
    if "tokens_per_s" in summary:
        loss = f"loss {summary['first_loss']:.3f} -> {summary['last_loss']:.3f}"
        return f"{summary['steps']} steps on {summary['samples']} samples, {loss}, {summary['tokens_per_s']:,} tokens/s"
    return ", ".join(f"{k} {_short(v)}" for k, v in summary.items())


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_short(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "/".join(map(str, value))
    return str(value)


def eval_table(table: dict[str, dict[str, float]]) -> str:
    """Models as rows, domains as columns (pass@1), like TinyR1's table."""
    from distill.generate.runner import format_table

    domains = sorted({d for scores in table.values() for d in scores})
    return format_table(("model", *domains), [(label, *(scores.get(d) for d in domains))
                                              for label, scores in table.items()])


def run_recipe(source: str | Path | dict[str, Any], out: str | Path | None = None, start: str | None = None,
               progress: bool = True, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Load a recipe (file or mapping) and run it into `out`; returns what results.json holds."""
    return Run(Recipe.load(source, out), progress=progress).run(start, log)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a recipe: curate -> branch SFT per domain -> merge -> eval (resumable)",
        description="Run every step of RECIPE.yaml into --out; steps already done with the same settings are "
        "skipped, so a killed run resumes where it stopped. Prints and writes OUT/results.json: models x domains.",
    )
    parser.add_argument("recipe", metavar="RECIPE.yaml")
    parser.add_argument("--out", help="output folder (default: runs/<recipe name>)")
    parser.add_argument("--from", dest="start", choices=GROUPS, help="redo this step and every later one")
    parser.add_argument("--quiet", action="store_true", help="no progress bars (the per-step lines stay)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    results = run_recipe(args.recipe, args.out, args.start, progress=not args.quiet)
    print()
    print(eval_table(results["eval"]))
    print(f"\nresults: {Path(results['out']) / 'results.json'} ({results['seconds']:.0f}s, "
          f"{results['cpu_seconds']:.0f}s CPU)", file=sys.stdout)
    return 0
