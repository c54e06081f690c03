"""`distillery merge-search PLAN.yaml`: search merge methods and their parameters for the merge that
keeps the largest share of every student's gain, scored on validation sets by `distillery eval`'s
machinery, within a budget of evaluations.

The plan (YAML)::

    base: out/base                          # the model every student was trained from
    students: {math: out/sft/math, code: out/sft/code}        # domain -> its student
    validation: {math: val/math.jsonl, code: val/code.jsonl}  # domain -> a file eval reads (never the test set)
    methods: [ties, dare_ties, task_arithmetic, breadcrumbs_ties, della]   # the search space
    weight: [0.3, 1.5]                      # range of each student's weight
    density: [0.2, 1.0]                     # range of each student's density (methods that use one)
    gradient: false                         # true: weight and density are [first layer, last layer] gradients
    scale: null                             # [low, high]: also search the global lambda (task-vector methods)
    normalize: true                         # divide by the weights' sum (weights relative, lambda the scale); null: each method's default
    chain: false                            # true: also search chained merges, one student at a time, in any order
    fit: null                               # true (or its settings): the first candidate is fitted (distill.merge_fit)
    budget: 20                              # candidate evaluations (the base and students are scored once more)
    explore: 10                             # of which random exploration (default: twice the methods)
    seed: 0
    out: out/merge_search                   # candidates.parquet, best.yaml
    limit: null                             # first N validation problems per domain
    sampling: {n: 1, temperature: 0.0, max_tokens: 512}
    style: r1                               # prompt style (raw: the files hold the prompts as trained)
    backend_options: {batch_size: 16}       # the hf backend's options

Objective. For domain d with base score b_d and student score s_d, the gain is g_d = s_d - b_d; a
candidate scoring c_d keeps share_d = (c_d - b_d) / g_d of it, and the objective is the worst
share, min over the domains with g_d > 0. Maximising the worst share (not the mean) is what
Branch-Merge needs: a merge that keeps all of math and none of code is not a success. Candidates
with the same worst share (pass@1 on a few dozen problems takes few values) are ranked by their
mean share.

Algorithm: seeded random exploration, then a (1+1) evolution strategy. A candidate is a method,
a point x in [0, 1]^D (each student's weight and density, scaled into the plan's ranges; two
values each with gradients; then lambda when `scale` is set) and, with `chain`, an order: none
(every student in one merge) or a permutation of the students, merged one at a time (the first two,
then that result with the next, each step over the base, the running merge with weight and density
1), as TinyR1 chained its Arcee Fusion steps. The first evaluations are each method at the centre of the ranges,
then uniform random points, `explore` candidates in all; after that each candidate
mutates the best so far (Gaussian step sigma on x, clipped to [0, 1]; another method with
probability 0.2, another order with probability 0.2), and sigma grows by 1.5 after an improvement and shrinks by 0.85 otherwise (the
1/5th-success rule's spirit). Why not a grid: it grows as (levels)^D and spends most of a small
budget far from good points. Why not CMA-ES or Bayesian optimisation: CMA-ES needs several
generations of 4 + 3 ln D candidates to adapt its covariance, more than a budget of tens, and a
surrogate model over a mixed categorical space is fragile with so few noisy scores (pass@1 on a
validation set of a few dozen problems). Random starts guard against a bad first method; the ES
then refines the incumbent with the budget left.

With `fit`, the first candidate of the budget is not proposed but fitted: task arithmetic with a
weight per student and per tensor, fitted by gradient descent to the students' own answers on the
validation prompts (distill.merge_fit), then scored like the others.

Every proposal depends only on the seed, the candidate's index and the scores before it, so a
run that stops is resumed by running it again: the candidates already in candidates.parquet are
re-proposed, recognised and not re-evaluated. Candidates are merged in memory with
`merge.merge_state_dicts` from state dicts loaded once, and scored by loading the merged weights
into one transformers model (`distill.evaluate.evaluate` with that engine), so no candidate is
written to disk; the best one is written as a merge config (best.yaml) for `distillery merge`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

DEFAULT_METHODS = ("ties", "dare_ties", "task_arithmetic", "breadcrumbs_ties", "della")
_OTHER_METHOD = 0.2  # probability that a mutation changes the method (and, with chain, the order)


class SearchError(Exception):
    user_error = True


@dataclass
class Plan:
    base: str
    students: dict[str, str]
    validation: dict[str, str]
    methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    weight: tuple[float, float] = (0.3, 1.5)
    density: tuple[float, float] = (0.2, 1.0)
    gradient: bool = False
    scale: tuple[float, float] | None = None
    normalize: bool | None = True
    chain: bool = False
    fit: Any = (
        None  # true or {prompts, steps, lr, batch, init, seed}: also a fitted candidate (distill.merge_fit)
    )
    budget: int = 20
    explore: int | None = None
    seed: int = 0
    out: str = "out/merge_search"
    limit: int | None = None
    sampling: dict[str, Any] = field(default_factory=lambda: {"n": 1, "temperature": 0.0, "max_tokens": 512})
    backend_options: dict[str, Any] = field(default_factory=dict)
    workers: int = 2
    style: str = "r1"
    tag: str = ""  # what else the scores depend on (a recipe: the fingerprints of the models' steps)

    @property
    def domains(self) -> list[str]:
        return list(self.students)

    def digest(self) -> str:
        """What the stored candidates depend on (not the budget: a larger one extends a run). The
        models and validation files count by their content, not their paths, so a moved or copied
        run reads its table back."""
        scored = [key for key in SETTINGS if key not in ("budget", "backend_options", "workers")]
        values: dict[str, Any] = {key: getattr(self, key) for key in (*scored, "tag")}
        values["base"] = content_digest(self.base)
        values["students"] = {d: content_digest(p) for d, p in self.students.items()}
        values["validation"] = {d: content_digest(p) for d, p in self.validation.items()}
        text = json.dumps(values, sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# What a model's scores depend on in its folder (not the card or the training summary, which name paths).
_WEIGHTS = ("*.safetensors", "config.json")
_DIGESTS: dict[tuple[Any, ...], str] = {}  # (files, sizes, mtimes) -> digest: each file is read once


def content_digest(path: str | Path) -> str:
    """sha256 of a file's bytes, or of a model folder's weights and config.json (names and bytes);
    a path that does not exist yet digests as missing."""
    root = Path(path)
    files = sorted({f for pattern in _WEIGHTS for f in root.glob(pattern)}) if root.is_dir() else [root]
    files = [f for f in files if f.is_file()]
    if not files:
        return "missing"
    key = tuple((str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        for file in files:
            digest.update(file.name.encode() + b"\x00")
            with file.open("rb") as handle:
                while block := handle.read(8 << 20):
                    digest.update(block)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


def load_plan(path: str | Path) -> Plan:
    """Read and check a search plan; paths are relative to the plan's folder unless absolute."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise SearchError(f"cannot read search plan {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise SearchError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, Mapping):
        raise SearchError(f"{path}: a search plan is a mapping with base, students and validation")
    known = set(Plan.__dataclass_fields__) - {"tag"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SearchError(f"{path}: unknown keys {unknown} (expected {', '.join(sorted(known))})")
    for key in ("base", "students", "validation"):
        if key not in data:
            raise SearchError(f"{path}: {key} is required")
    students, validation = data["students"], data["validation"]
    if not isinstance(students, Mapping) or not students:
        raise SearchError(f"{path}: students must map each domain to its student model")
    if not isinstance(validation, Mapping) or set(validation) != set(students):
        raise SearchError(f"{path}: validation must give one file per student domain ({', '.join(students)})")

    def local(value: Any) -> str:
        candidate = Path(str(value)).expanduser()
        return str(candidate if candidate.is_absolute() or candidate.exists() else path.parent / candidate)

    plan = Plan(
        base=local(data["base"]),
        students={d: local(p) for d, p in students.items()},
        validation={d: local(validation[d]) for d in students},
    )
    if "out" in data:
        plan.out = local(data["out"])
    return settle(
        plan, {k: v for k, v in data.items() if k not in ("base", "students", "validation", "out")}, str(path)
    )


# The search keys of a plan (a recipe's `merge: {search: ...}` takes the same).
SETTINGS = (
    "methods",
    "weight",
    "density",
    "gradient",
    "scale",
    "normalize",
    "chain",
    "fit",
    "budget",
    "explore",
    "seed",
    "limit",
    "sampling",
    "style",
    "backend_options",
    "workers",
)


def settle(plan: Plan, data: Mapping[str, Any], where: str) -> Plan:
    """`plan` with the search settings of `data` (the keys of SETTINGS) applied and checked."""
    path = where
    unknown = sorted(set(data) - set(SETTINGS))
    if unknown:
        raise SearchError(f"{path}: unknown search keys {unknown} (expected {', '.join(SETTINGS)})")
    for key in (
        "methods",
        "gradient",
        "normalize",
        "chain",
        "fit",
        "budget",
        "explore",
        "seed",
        "limit",
        "workers",
        "style",
    ):
        if key in data:
            setattr(plan, key, data[key])
    for key in ("weight", "density", "scale"):
        if data.get(key) is not None:
            try:
                low, high = (float(v) for v in data[key])
            except (TypeError, ValueError):
                raise SearchError(f"{path}: {key} must be [low, high], not {data[key]!r}") from None
            if not 0 <= low <= high:
                raise SearchError(f"{path}: {key} must be [low, high] with 0 <= low <= high")
            setattr(plan, key, (low, high))
    for key in ("sampling", "backend_options"):
        if key in data:
            setattr(plan, key, {**getattr(plan, key), **dict(data[key])})
    if plan.fit:
        from distill.merge_fit import FitSettings

        try:
            FitSettings.of(plan.fit)
        except (TypeError, ValueError) as error:
            raise SearchError(f"{path}: {error}") from None
    if plan.chain and len(plan.students) < 3:
        raise SearchError(f"{path}: chain needs three students or more (two merge in one step either way)")
    from merge.methods import METHODS

    for method in plan.methods:
        if (
            method not in METHODS
            or not METHODS[method].needs_base
            or "weight" not in METHODS[method].model_params
        ):
            usable = sorted(
                m for m, cls in METHODS.items() if cls.needs_base and "weight" in cls.model_params
            )
            raise SearchError(
                f"{path}: method {method!r} cannot be searched; use methods over a base with "
                f"per-model weights: {', '.join(usable)}"
            )
    if not isinstance(plan.budget, int) or plan.budget < 1:
        raise SearchError(f"{path}: budget must be a positive number of evaluations")
    if plan.explore is None:
        plan.explore = 2 * len(plan.methods)
    if not isinstance(plan.explore, int) or plan.explore < len(plan.methods):
        raise SearchError(f"{path}: explore must be at least the number of methods ({len(plan.methods)})")
    return plan


# ---------------------------------------------------------------------------------------------
# Candidates and the search


@dataclass(frozen=True)
class Candidate:
    method: str
    x: tuple[float, ...]  # in [0, 1]: per student weight (and density), two values each with gradients
    order: tuple[int, ...] | None = None  # chain: the students' indices in merge order; None: one merge

    def key(self) -> str:
        point = [self.method, [round(v, 6) for v in self.x]]
        return json.dumps(point if self.order is None else [*point, list(self.order)])


def dimensions(plan: Plan) -> int:
    return len(plan.students) * 2 * (2 if plan.gradient else 1) + (1 if plan.scale else 0)


def orders(plan: Plan) -> list[tuple[int, ...] | None]:
    """The merge orders a candidate may take: one merge of all, then (with chain) every chain."""
    import itertools

    if not plan.chain:
        return [None]
    return [None, *itertools.permutations(range(len(plan.students)))]


def model_parameters(plan: Plan, candidate: Candidate) -> list[dict[str, Any]]:
    """Per student (in plan order): its weight and density as merge parameters."""
    from merge.methods import METHODS

    method = METHODS[candidate.method]
    # task_arithmetic accepts a density but never sparsifies: searching it would be wasted budget
    uses_density = "density" in method.model_params and getattr(method, "sparsify", True) is not None
    per = 2 if plan.gradient else 1
    out = []
    for index in range(len(plan.students)):
        values = candidate.x[index * 2 * per : (index + 1) * 2 * per]
        weights = [plan.weight[0] + v * (plan.weight[1] - plan.weight[0]) for v in values[:per]]
        densities = [plan.density[0] + v * (plan.density[1] - plan.density[0]) for v in values[per:]]
        params: dict[str, Any] = {"weight": _setting(weights)}
        if uses_density:
            params["density"] = _setting(densities)
        out.append(params)
    return out


def global_parameters(plan: Plan, candidate: Candidate) -> dict[str, Any]:
    """The candidate's global merge parameters: the plan's `normalize`, and lambda when the plan
    searches a scale, for the methods that take them."""
    from merge.methods import METHODS

    shared = METHODS[candidate.method].shared_params
    out: dict[str, Any] = {}
    if plan.normalize is not None and "normalize" in shared:
        out["normalize"] = plan.normalize
    if plan.scale and "lambda" in shared:
        low, high = plan.scale
        out["lambda"] = round(low + candidate.x[-1] * (high - low), 4)
    return out


@dataclass(frozen=True)
class Merge:
    """What a candidate merges: a method, its global and per-student parameters, and the order of
    a chain (None: the students in one merge)."""

    method: str
    parameters: dict[str, Any]
    model_parameters: list[dict[str, Any]]
    order: tuple[int, ...] | None = None

    def steps(self) -> list[tuple[list[int | str], list[dict[str, Any]]]]:
        """The merges to run, each (inputs, their parameters): an input is a student's index or
        "previous" (the step before's result, with weight and density 1)."""
        if self.order is None:
            return [(list(range(len(self.model_parameters))), self.model_parameters)]
        first, second, *rest = self.order
        steps = [([first, second], [self.model_parameters[first], self.model_parameters[second]])]
        uses_density = "density" in self.model_parameters[0]
        running = {"weight": 1.0, **({"density": 1.0} if uses_density else {})}
        for index in rest:
            steps.append((["previous", index], [running, self.model_parameters[index]]))
        return steps

    def describe(self, domains: list[str]) -> str:
        """The parameters as JSON, for the table: per student (by domain), then lambda and the order."""
        text: dict[str, Any] = {
            d: {k: _summary(v) for k, v in p.items()}
            for d, p in zip(domains, self.model_parameters, strict=True)
        }
        text.update({k: _summary(v) for k, v in self.parameters.items()})
        if self.order is not None:
            text["order"] = " > ".join(domains[i] for i in self.order)
        return json.dumps(text)


def _summary(value: Any) -> Any:
    """A parameter as the table shows it: a per-tensor list as its mean and range."""
    if not isinstance(value, list) or not value or not isinstance(value[0], Mapping):
        return value
    values = [item["value"] for item in value]
    return (
        f"{len(values)} tensors, mean {sum(values) / len(values):.2f} ({min(values):.2f}..{max(values):.2f})"
    )


def candidate_merge(plan: Plan, candidate: Candidate) -> Merge:
    return Merge(
        candidate.method,
        global_parameters(plan, candidate),
        model_parameters(plan, candidate),
        candidate.order,
    )


def _setting(values: list[float]) -> float | list[float]:
    rounded = [round(v, 4) for v in values]
    return rounded[0] if len(rounded) == 1 else rounded


def propose(plan: Plan, index: int, history: list[tuple[Candidate, float]]) -> Candidate:
    """Candidate number `index`, from the seed and the objective of the candidates before it."""
    rng = random.Random(f"{plan.seed}:{index}")
    size = dimensions(plan)
    explore = max(len(plan.methods), plan.explore or 0)
    choices = orders(plan)
    if index < len(plan.methods):
        return Candidate(plan.methods[index], (0.5,) * size)
    if index < explore or not history:
        # with chain, half the random starts are chains (there are n! of them against one flat merge)
        order = rng.choice(choices[1:]) if len(choices) > 1 and rng.random() < 0.5 else None
        return Candidate(rng.choice(plan.methods), tuple(rng.random() for _ in range(size)), order)
    sigma = 0.2
    best, best_score = history[0]
    for step, (candidate, score) in enumerate(history):
        if step >= explore:  # the step size adapts only over the ES phase
            sigma = min(0.5, sigma * 1.5) if score > best_score else max(0.02, sigma * 0.85)
        if score > best_score:
            best, best_score = candidate, score
    method = rng.choice(plan.methods) if rng.random() < _OTHER_METHOD else best.method
    order = rng.choice(choices) if len(choices) > 1 and rng.random() < _OTHER_METHOD else best.order
    x = tuple(min(1.0, max(0.0, v + rng.gauss(0.0, sigma))) for v in best.x)
    return Candidate(method, x, order)


def worst_share(
    scores: Mapping[str, float], base: Mapping[str, float], students: Mapping[str, float]
) -> float:
    """min over domains with a positive gain of (score - base) / gain; nan when no student gained."""
    shares = [(scores[d] - base[d]) / (students[d] - base[d]) for d in students if students[d] > base[d]]
    return min(shares) if shares else math.nan


def mean_share(
    scores: Mapping[str, float], base: Mapping[str, float], students: Mapping[str, float]
) -> float:
    """The mean over domains with a positive gain of (score - base) / gain (the tie-break)."""
    shares = [(scores[d] - base[d]) / (students[d] - base[d]) for d in students if students[d] > base[d]]
    return sum(shares) / len(shares) if shares else math.nan


def objective(row: Mapping[str, Any]) -> tuple[float, float]:
    """How a scored candidate ranks: its worst share, then its mean share (-inf when undefined)."""
    values = (row["worst_share"], row["mean_share"])
    return tuple(-math.inf if math.isnan(v) else v for v in values)  # type: ignore[return-value]


def shares(
    scores: Mapping[str, float], base: Mapping[str, float], students: Mapping[str, float]
) -> dict[str, float]:
    return {
        d: (scores[d] - base[d]) / (students[d] - base[d]) if students[d] > base[d] else math.nan
        for d in students
    }


@dataclass
class SearchResult:
    rows: list[dict[str, Any]]  # every evaluation, references first
    best: dict[str, Any] | None
    evaluated: int  # evaluations run by this call (the rest were read back)


def search(
    plan: Plan,
    score: Callable[[str, Any], dict[str, float]],
    table: Path | None = None,
    log: Callable[[str], None] = lambda _: None,
    fit: Callable[[], Merge] | None = None,
) -> SearchResult:
    """Run (or resume) the search. `score(label, what)` returns pass@1 per domain, where `what` is a
    model path (the references) or the Merge of a candidate. With the plan's `fit` and `fit` given
    (it returns the fitted merge), the fitted candidate is the first of the budget."""
    rows = _read_rows(table, plan) if table is not None else []
    done = {row["key"]: row for row in rows}
    evaluated = 0

    def run(
        key: str, kind: str, label: str, what: Any, extra: dict[str, Any], spent: float = 0.0
    ) -> dict[str, Any]:
        nonlocal evaluated
        if key in done:
            return done[key]
        started = time.perf_counter() - spent
        scores = score(label, what)
        row = {
            "key": key,
            "kind": kind,
            "label": label,
            **extra,
            **{f"score_{d}": float(scores[d]) for d in plan.domains},
            "seconds": time.perf_counter() - started,
            "plan": plan.digest(),
        }
        rows.append(row)
        done[key] = row
        evaluated += 1
        if table is not None:
            _write_rows(table, rows, plan)
        return row

    base_row = run("reference:base", "reference", "base", plan.base, {})
    student_rows = {
        d: run(f"reference:{d}", "reference", f"student {d}", plan.students[d], {}) for d in plan.domains
    }
    base = {d: base_row[f"score_{d}"] for d in plan.domains}
    own = {d: student_rows[d][f"score_{d}"] for d in plan.domains}
    gained = [d for d in plan.domains if own[d] > base[d]]
    log(
        f"base {_fmt(base)}; students on their own domain {_fmt(own)}; gains in {', '.join(gained) or 'no domain'}"
    )

    def rank(row: dict[str, Any]) -> tuple[float, float]:
        scores = {d: row[f"score_{d}"] for d in plan.domains}
        row.update({f"share_{d}": v for d, v in shares(scores, base, own).items()})
        row["worst_share"] = worst_share(scores, base, own)
        row["mean_share"] = mean_share(scores, base, own)
        return objective(row)

    fitted = 1 if plan.fit and fit is not None else 0
    if fitted:
        from dataclasses import asdict

        from distill.merge_fit import FitSettings

        key = "fit:" + json.dumps(asdict(FitSettings.of(plan.fit)), sort_keys=True)
        if key not in done:
            started = time.perf_counter()
            merge = fit()
            extra = {
                "method": merge.method,
                "parameters": merge.describe(plan.domains),
                "merge": _encode(merge),
            }
            run(key, "candidate", f"fit {merge.method}", merge, extra, time.perf_counter() - started)
        row = done[key]
        rank(row)
        log(f"fit: {row['parameters']}: {_fmt(row, plan.domains)}, worst share {row['worst_share']:.3f}")
    history: list[tuple[Candidate, tuple[float, float]]] = []
    for index in range(plan.budget - fitted):
        candidate = propose(plan, index, history)
        merge = candidate_merge(plan, candidate)
        row = run(
            candidate.key(),
            "candidate",
            f"#{index} {candidate.method}" + (" chain" if candidate.order else ""),
            merge,
            {"method": candidate.method, "parameters": merge.describe(plan.domains), "merge": _encode(merge)},
        )
        history.append((candidate, rank(row)))
        log(f"#{index} {row['parameters']}: {_fmt(row, plan.domains)}, worst share {row['worst_share']:.3f}")
    for row in rows:
        if row["kind"] == "candidate":
            rank(row)
    if table is not None:
        _write_rows(table, rows, plan)
    scored = [row for row in rows if row["kind"] == "candidate" and not math.isnan(row["worst_share"])]
    best = max(scored, key=objective) if scored else None
    return SearchResult(rows, best, evaluated)


def _encode(merge: Merge) -> str:
    return json.dumps(
        {
            "method": merge.method,
            "parameters": merge.parameters,
            "model_parameters": merge.model_parameters,
            "order": merge.order,
        }
    )


def decode(row: Mapping[str, Any]) -> Merge:
    """The Merge of a stored candidate row."""
    data = json.loads(row["merge"])
    order = tuple(data["order"]) if data["order"] is not None else None
    return Merge(data["method"], data["parameters"], data["model_parameters"], order)


def _fmt(scores: Mapping[str, Any], domains: list[str] | None = None) -> str:
    if domains is not None:
        scores = {d: scores[f"score_{d}"] for d in domains}
    return ", ".join(f"{d} {v:.3f}" for d, v in scores.items())


def stored_digests(table: Path) -> set[str]:
    """The plan digests of the candidates stored in `table`."""
    import polars as pl

    return set(pl.read_parquet(table, columns=["plan"])["plan"].to_list())


def _read_rows(table: Path, plan: Plan) -> list[dict[str, Any]]:
    if not table.exists():
        return []
    import polars as pl

    rows = pl.read_parquet(table).to_dicts()
    stale = {row["plan"] for row in rows} - {plan.digest()}
    if stale:
        raise SearchError(
            f"{table} holds candidates of a different plan; give this plan another out folder "
            "(only budget may change between runs of one search)"
        )
    return [
        {key: value for key, value in row.items() if not key.startswith("share_") and key not in DERIVED}
        for row in rows
    ]


DERIVED = ("worst_share", "mean_share")  # recomputed from the scores on every run


def _write_rows(table: Path, rows: list[dict[str, Any]], plan: Plan) -> None:
    import polars as pl

    columns = [
        "key",
        "kind",
        "label",
        "method",
        "parameters",
        *(f"score_{d}" for d in plan.domains),
        *(f"share_{d}" for d in plan.domains),
        "worst_share",
        "mean_share",
        "seconds",
        "merge",
        "plan",
    ]
    schema = {name: pl.Float64 for name in columns if name.startswith(("score_", "share_"))}
    schema.update({"worst_share": pl.Float64, "mean_share": pl.Float64, "seconds": pl.Float64})
    frame = pl.DataFrame(
        [{name: row.get(name) for name in columns} for row in rows],
        schema={name: schema.get(name, pl.String) for name in columns},
    )
    table.parent.mkdir(parents=True, exist_ok=True)
    partial = table.with_name(f".{table.name}.partial")
    frame.write_parquet(partial)
    partial.replace(table)  # a stopped run never leaves a half-written table


# ---------------------------------------------------------------------------------------------
# Scoring with distillery's eval machinery, merged in memory


class InMemoryScorer:
    """Loads the base, the students and one transformers model once; scores a model or a merge."""

    def __init__(self, plan: Plan, progress: bool = False):
        from distill.evaluate import Bench
        from distill.generate.base import SamplingParams, load_backend

        self.plan = plan
        self.progress = progress
        self.params = SamplingParams(**plan.sampling)
        self.benches = [Bench(f"val_{d}", Path(plan.validation[d]), d) for d in plan.domains]
        for bench in self.benches:
            if not bench.path.exists():
                raise SearchError(f"validation file {bench.path} not found")
        self.engine = load_backend("hf", plan.base, **plan.backend_options)
        self.states = {path: _load_state(path) for path in (plan.base, *plan.students.values())}

    def __call__(self, label: str, what: str | Merge) -> dict[str, float]:

        from distill.evaluate import evaluate

        if isinstance(what, str):
            state = self.states[what]
        else:
            students = [self.states[self.plan.students[d]] for d in self.plan.domains]
            state = merge_in_memory(what, self.states[self.plan.base], students, self.plan.seed)
        self._load(label, state)
        report = evaluate(
            label,
            self.benches,
            self.params,
            limit=self.plan.limit,
            workers=self.plan.workers,
            progress=self.progress,
            engine=self.engine,
            style=self.plan.style,
        )
        return {d: report.domains.get(d, {}).get("pass@1", 0.0) for d in self.plan.domains}

    def _load(self, label: str, state: Mapping[str, Any]) -> None:
        import torch

        lm = self.engine.lm
        reference = lm.state_dict()
        with torch.no_grad():
            missing, unexpected = lm.load_state_dict(
                {k: v.to(reference[k].dtype) for k, v in state.items()}, strict=False
            )
        if unexpected or any(not _tied(name, lm) for name in missing):
            raise SearchError(
                f"{label}: weights do not fit the base model (missing {missing[:3]}, "
                f"unexpected {unexpected[:3]})"
            )

    def fit(self, log: Callable[[str], None] = lambda _: None) -> Merge:
        """The merge (task arithmetic, or TIES with a lambda per tensor) with per-student, per-tensor
        weights fitted to the students' answers on the first validation prompts of each domain
        (distill.merge_fit)."""
        from distill.generate.base import Request
        from distill.generate.prompts import read_prompts
        from distill.generate.runner import sample_items
        from distill.merge_fit import FitSettings, fit_coefficients

        settings = FitSettings.of(self.plan.fit)
        items = [read_prompts(str(b.path), domain=b.domain)[: settings.prompts] for b in self.benches]
        style = self.plan.style
        greedy = replace(self.params, n=1, temperature=0.0)  # one answer per prompt: the student's own
        rendered = [[self.engine.render(Request(i.messages(style), 0, greedy)) for i in d] for d in items]

        def answer(index: int) -> list[str]:
            self._load("fit", self.states[self.plan.students[self.plan.domains[index]]])
            results, _ = sample_items(self.engine, items[index], greedy, style, progress=False)
            return [completion.text for _, _, completion in results]

        students = [self.states[self.plan.students[d]] for d in self.plan.domains]
        fitted = fit_coefficients(
            self.engine.lm,
            self.engine.tokenizer,
            self.states[self.plan.base],
            students,
            rendered,
            answer,
            settings,
            log,
        )
        models: list[dict[str, Any]] = [{"weight": _filtered(w)} for w in fitted.weights]
        if fitted.scale is None:
            return Merge("task_arithmetic", {"normalize": False}, models)
        for model in models:
            model["density"] = fitted.density
        return Merge("ties", {"normalize": True, "lambda": _filtered(fitted.scale)}, models)

    def close(self) -> None:
        self.engine.close()


def _filtered(values: Mapping[str, float]) -> list[dict[str, Any]]:
    """Per-tensor values as a filtered list, longest names first: a filter is a substring match and
    the first match wins."""
    return [{"filter": n, "value": v} for n, v in sorted(values.items(), key=lambda item: -len(item[0]))]


def merge_in_memory(
    merge: Merge, base: Mapping[str, Any], students: list[Mapping[str, Any]], seed: int
) -> dict[str, Any]:
    """Run a candidate's merge (one step, or a chain of two-model steps) on state dicts."""
    from merge import merge_state_dicts

    previous: Mapping[str, Any] | None = None
    for inputs, parameters in merge.steps():
        models = [previous if i == "previous" else students[i] for i in inputs]
        previous = merge_state_dicts(
            merge.method,
            models,
            base=base,
            parameters=merge.parameters,
            model_parameters=parameters,
            seed=seed,
        )
    assert previous is not None
    return dict(previous)


def _tied(name: str, lm: Any) -> bool:
    return name.endswith("lm_head.weight") and bool(getattr(lm.config, "tie_word_embeddings", False))


def _load_state(path: str) -> dict[str, Any]:
    from safetensors.torch import load_file

    files = sorted(Path(path).glob("*.safetensors"))
    if not files:
        raise SearchError(f"{path}: no safetensors weights")
    state: dict[str, Any] = {}
    for file in files:
        state.update(load_file(file))
    return state


def best_config(plan: Plan, best: Mapping[str, Any]) -> dict[str, Any]:
    """A `distillery merge` config for the best candidate (a chain is a config of `steps`)."""
    merge = decode(best)
    steps = []
    for number, (inputs, parameters) in enumerate(merge.steps()):
        names = [steps[-1]["name"] if i == "previous" else plan.students[plan.domains[i]] for i in inputs]
        step: dict[str, Any] = {"name": f"step{number + 1}", "merge_method": merge.method}
        step["base_model"] = plan.base
        step["models"] = [{"model": n, "parameters": p} for n, p in zip(names, parameters, strict=True)]
        if merge.parameters:
            step["parameters"] = dict(merge.parameters)
        step["seed"] = plan.seed
        steps.append(step)
    if len(steps) == 1:
        steps[0].pop("name")
        return steps[0]
    return {"steps": steps}


def table_text(result: SearchResult, plan: Plan) -> str:
    from distill.generate.runner import format_table

    rows = sorted(
        (r for r in result.rows if r["kind"] == "candidate"),
        key=lambda r: -(r["worst_share"] if not math.isnan(r["worst_share"]) else -math.inf),
    )
    headers = (
        "candidate",
        "parameters",
        *(f"{d} pass@1" for d in plan.domains),
        *(f"{d} share" for d in plan.domains),
        "worst share",
        "seconds",
    )
    body = [
        (
            r["label"],
            r["parameters"],
            *(r[f"score_{d}"] for d in plan.domains),
            *(r[f"share_{d}"] for d in plan.domains),
            r["worst_share"],
            round(r["seconds"], 1),
        )
        for r in rows
    ]
    return format_table(headers, body)


# ---------------------------------------------------------------------------------------------
# CLI


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "merge-search",
        help="search merge methods and parameters for the merge that keeps each student's gain",
        description=__doc__.split("\n\n", 1)[0],
    )
    parser.add_argument(
        "plan", metavar="PLAN.yaml", help="search plan: base, students, validation, budget..."
    )
    parser.add_argument(
        "--budget", type=int, help="candidate evaluations (overrides the plan; a larger one resumes)"
    )
    parser.add_argument("--out", help="output folder (overrides the plan)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run_search(
    plan: Plan, progress: bool = False, log: Callable[[str], None] = lambda _: None
) -> SearchResult:
    """Load the models once, run (or resume) the search into plan.out/candidates.parquet and write
    the best candidate as plan.out/best.yaml (when one scored)."""
    out = Path(plan.out)
    scorer = InMemoryScorer(plan, progress=progress)
    try:
        fit = (lambda: scorer.fit(log)) if plan.fit else None
        result = search(plan, scorer, out / "candidates.parquet", log=log, fit=fit)
    finally:
        scorer.close()
    if result.best is not None:
        (out / "best.yaml").write_text(yaml.safe_dump(best_config(plan, result.best), sort_keys=False))
    return result


def run(args: argparse.Namespace) -> int:
    plan = load_plan(args.plan)
    if args.budget is not None:
        plan.budget = args.budget
    if args.out:
        plan.out = args.out
    out = Path(plan.out)
    started = time.perf_counter()
    result = run_search(plan, progress=not args.quiet, log=lambda line: print(line, file=sys.stderr))
    print(table_text(result, plan))
    seconds = time.perf_counter() - started
    print(
        f"{result.evaluated} evaluations run ({len(result.rows) - result.evaluated} read back) in {seconds:.1f} s; "
        f"every candidate in {out / 'candidates.parquet'}"
    )
    if result.best is None:
        print("no candidate scored: no student gained on its validation set over the base", file=sys.stderr)
        return 1
    print(
        f"best: {result.best['label']} {result.best['parameters']}, worst share kept "
        f"{result.best['worst_share']:.3f}; merge it with: distillery merge {out / 'best.yaml'} --out DIR"
    )
    return 0
