"""domain: give every row a domain (math, code, science, other), a confidence and the rules behind it.

(Called `split` before; `stages: {split: ...}` in a config still means this stage. The train/val
split is the shard stage's.)

Each rule votes for one domain with a weight; the domain with the most votes wins and
`domain_confidence = 1 - exp(-(top - runner_up))`, so a lone weak hint gives ~0.6, agreeing strong
hints ~1, and a tie 0. Rows with no hint at all fall to `other` (prior `other_prior`).

    given             the row already has a domain (an earlier curation)      weight 10
    source_map        config `sources: {glob: domain}`: source metadata you trust   10
    meta_tag          meta domain/category/subject/type, e.g. MATH's "Algebra"       4
    source_name       a well-known dataset name in `source` (gsm8k, humaneval, gpqa)  2
    tests             the row has code tests                                         4
    code_fence        a fenced block in a programming language, or code in a fence   2
    code_intent       "write a function", "input format", "stdin", `class Solution`  1.5
    boxed             a \\boxed{} answer                                              2
    latex             LaTeX math in the problem                                      1
    numeric_reference a numeric or LaTeX reference answer                            1
    mc_science        multiple choice with science vocabulary                        3
    science_terms     two or more science terms in the problem                       1
    learned           (method: learned) the classifier's probabilities               2

The config overrides any weight (`weights: {latex: 0}` disables a rule), maps sources
(`sources: {"openr1_*": math}`), adds regex rules (`rules: [{name, domain, pattern, field, weight}]`)
and replaces the science vocabulary (`science_terms`). With `per_problem` (default) the votes of all
generations of a problem are summed, so a problem's generations never land in different domains.

`method: learned` trains a hashed word n-gram logistic regression (numpy) on the rows whose rule
label is confident (`learned_min_confidence`) and adds its votes to every row; its accuracy against
the rule labels on held-out problems is written to the manifest (`classifier`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import polars as pl

from curate.classify import HashedNgramClassifier
from curate.errors import CurateError
from curate.rows import seeded_key
from curate.schema import DOMAINS
from curate.stage import Stage, StageContext, decide, rows_of

METHODS = ("rules", "learned")
RULE_FIELDS = ("problem", "response", "reasoning", "reference", "source", "meta")
DEFAULT_WEIGHTS = {
    "given": 10.0,
    "source_map": 10.0,
    "meta_tag": 4.0,
    "source_name": 2.0,
    "tests": 4.0,
    "code_fence": 2.0,
    "code_intent": 1.5,
    "boxed": 2.0,
    "latex": 1.0,
    "numeric_reference": 1.0,
    "mc_science": 3.0,
    "science_terms": 1.0,
    "learned": 2.0,
}
SCIENCE_TERMS = (
    "atom", "atomic", "molecule", "molecular", "electron", "proton", "neutron", "photon", "isotope", "nucleus",
    "quantum", "orbital", "covalent", "ionic", "oxidation", "redox", "catalyst", "enzyme", "protein", "dna",
    "rna", "gene", "genetic", "chromosome", "allele", "mitochondria", "cell membrane", "organism", "species",
    "bacteria", "virus", "ecosystem", "photosynthesis", "acid", "molar", "solvent", "reagent", "compound",
    "wavelength", "magnetic field", "electric field", "gravitational", "momentum", "thermodynamic", "entropy",
    "enthalpy", "kinetic energy", "spectroscopy", "hamiltonian", "polymer", "reaction", "ph",
)  # fmt: skip
META_KEYS = ("domain", "category", "subject", "type", "task", "task_type", "topic")
META_VALUES = {
    "math": (
        "math", "mathematics", "maths", "algebra", "geometry", "number theory", "calculus", "precalculus",
        "prealgebra", "intermediate algebra", "counting & probability", "counting and probability",
        "combinatorics", "probability", "statistics", "arithmetic", "trigonometry", "inequalities",
    ),
    "code": ("code", "coding", "programming", "python", "cpp", "c++", "java", "algorithms", "competitive programming"),
    "science": ("science", "physics", "chemistry", "biology", "stem", "astronomy", "earth science", "medicine"),
}  # fmt: skip
SOURCE_NAMES = {
    "math": ("math", "gsm", "aime", "amc", "olympi", "numina", "minerva", "theorem"),
    "code": ("code", "coding", "humaneval", "mbpp", "apps", "taco", "leetcode", "livecodebench", "kodcode"),
    "science": ("science", "sciq", "gpqa", "physics", "chem", "bio", "scibench", "mmlu_stem"),
}
LANGUAGES = r"python|py|python3|cpp|c\+\+|c|java|javascript|js|typescript|ts|rust|go|golang|csharp|cs|kotlin|swift|ruby|php|scala"
CODE_FENCE = (
    rf"(?i)```(?:{LANGUAGES})\s*\n|```\s*\n\s*(?:def |class |import |from \S+ import |#include|public )"
)
CODE_INTENT = (
    r"(?i)\bwrite (?:a|an)\s+(?:\w+\s+)?(?:function|program|class|method|script)\b|\bimplement (?:a|an|the)\s+"
    r"(?:\w+\s+)?(?:function|class|method|algorithm)\b|\binput format\b|\boutput format\b|\bstandard input\b|"
    r"\bstdin\b|\bstdout\b|\btime limit\b|\bmemory limit\b|\bdef \w+\(|\bclass Solution\b|>>> \w+\("
)
LATEX_MATH = r"\$[^$]+\$|\\\(|\\\[|\\frac|\\sqrt|\\cdot|\\sum|\\int|\\pi\b|\^\{"
NUMERIC_ANSWER = r"^\s*\\?\$?\s*[-+(\[]?\s*(?:\d|\.\d|\\[a-z]+)"
MULTIPLE_CHOICE = (
    r"(?m)(?:^|\s)\(?[A-D][).:]\s+\S[\s\S]*(?:^|\s)\(?[B-E][).:]\s+\S[\s\S]*(?:^|\s)\(?[C-F][).:]\s+\S"
)


def _glob_regex(glob: str) -> str:
    """A shell glob (`*`, `?`) over the whole source name, as a Rust regex."""
    return "^" + "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob) + "$"


def _boundary_prefixes(words: tuple[str, ...]) -> str:
    """Matches a name containing one of `words` at a word start (underscores and digits separate)."""
    return r"(?i)(?:^|[\W_\d])(?:" + "|".join(re.escape(w) for w in words) + ")"


class Rule:
    """One vote: `domain` gets `weight` where `when` holds."""

    def __init__(self, name: str, domain: str, when: pl.Expr):
        if domain not in DOMAINS:
            raise CurateError(
                f"stage domain: rule {name!r} votes for {domain!r}; expected one of {', '.join(DOMAINS)}"
            )
        self.name, self.domain, self.when = name, domain, when.fill_null(False)


class Domain(Stage):
    name = "domain"
    version = "1"
    defaults = {
        "method": "rules",  # rules | learned
        "weights": {},  # rule name -> weight, over DEFAULT_WEIGHTS
        "sources": {},  # glob over `source` -> domain, trusted source metadata
        "rules": [],  # extra regex rules: {name, domain, pattern, field (problem), weight (3)}
        "science_terms": None,  # replaces SCIENCE_TERMS
        "other_prior": 0.5,
        "per_problem": True,
        "min_confidence": 0.0,  # rows below are dropped (`low_confidence`)
        "keep_domains": None,  # e.g. [math, code, science]: rows of other domains are dropped
        "learned_min_confidence": 0.75,  # rows this sure of their rule label train the classifier
        "learned_max_train": 50_000,
        "seed": 0,
    }
    types = {"science_terms": list, "keep_domains": list, "seed": (int, str)}
    choices = {"method": METHODS}

    def __init__(self, **options: Any):
        super().__init__(**options)
        opts = self.options
        for spec in opts["rules"]:
            if (
                not {"name", "domain", "pattern"} <= set(spec)
                or spec.get("field", "problem") not in RULE_FIELDS
            ):
                raise CurateError(
                    f"stage domain: a rule needs name, domain and pattern, and field one of {', '.join(RULE_FIELDS)}: {spec}"
                )
        unknown = set(opts["weights"]) - set(DEFAULT_WEIGHTS) - {r["name"] for r in opts["rules"]}
        if unknown:
            raise CurateError(f"stage domain: unknown rule(s) in weights: {', '.join(sorted(unknown))}")
        for domain in list(opts["sources"].values()) + list(opts["keep_domains"] or []):
            if domain not in DOMAINS:
                raise CurateError(
                    f"stage domain: unknown domain {domain!r}; expected one of {', '.join(DOMAINS)}"
                )
        self.weights = {
            **DEFAULT_WEIGHTS,
            **{r["name"]: r.get("weight", 3.0) for r in opts["rules"]},
            **opts["weights"],
        }
        self.learned: pl.DataFrame | None = None  # row_id -> the classifier's probability per domain
        self.learned_domains: list[str] = []
        self.problem_votes: pl.DataFrame | None = None

    # votes ------------------------------------------------------------------------------------
    def rules(self) -> list[Rule]:
        opts = self.options
        problem, response, reference = pl.col("problem"), pl.col("response"), pl.col("reference")
        text = pl.concat_str([problem, response, pl.col("reasoning")], separator="\n", ignore_nulls=True)
        terms = opts["science_terms"] or SCIENCE_TERMS
        science_hits = (
            problem.str.to_lowercase()
            .str.extract_all(r"\b(?:" + "|".join(re.escape(t) for t in terms) + r")\b")
            .list.unique()
            .list.len()
        )
        rules = [Rule("given", d, pl.col("domain") == d) for d in DOMAINS]
        rules += [
            Rule("source_map", domain, pl.col("source").str.contains(_glob_regex(glob)))
            for glob, domain in opts["sources"].items()
        ]
        for domain, values in META_VALUES.items():
            tagged = pl.lit(False)
            for key in META_KEYS:
                tagged = tagged | pl.col("meta").str.json_path_match(f"$.{key}").str.to_lowercase().is_in(
                    values
                )
            rules.append(Rule("meta_tag", domain, tagged))
        rules += [
            Rule("source_name", d, pl.col("source").str.contains(_boundary_prefixes(w)))
            for d, w in SOURCE_NAMES.items()
        ]
        rules += [
            Rule("tests", "code", pl.col("tests").is_not_null()),
            Rule("code_fence", "code", text.str.contains(CODE_FENCE)),
            Rule("code_intent", "code", problem.str.contains(CODE_INTENT)),
            Rule("boxed", "math", text.str.contains(r"\\boxed\s*\{")),
            Rule("latex", "math", problem.str.contains(LATEX_MATH)),
            Rule("numeric_reference", "math", reference.str.contains(NUMERIC_ANSWER)),
            Rule("mc_science", "science", problem.str.contains(MULTIPLE_CHOICE) & (science_hits >= 2)),
            Rule("science_terms", "science", science_hits >= 2),
        ]
        for spec in opts["rules"]:
            field = spec.get("field", "problem")
            rules.append(Rule(spec["name"], spec["domain"], pl.col(field).str.contains(spec["pattern"])))
        return [r for r in rules if self.weights.get(r.name, 0) != 0]

    def votes(self, batch: pl.DataFrame) -> pl.DataFrame:
        """Per row: the vote of each scored domain (`v_math` …) and the rules behind each (`r_math` …)."""
        rules = self.rules()
        columns = []
        for domain in DOMAINS:
            mine = [r for r in rules if r.domain == domain]
            score = pl.sum_horizontal(
                [r.when.cast(pl.Float64) * self.weights[r.name] for r in mine] or [pl.lit(0.0)]
            )
            names = pl.concat_list(
                [pl.when(r.when).then(pl.lit(r.name)) for r in mine] or [pl.lit(None, pl.String)]
            )
            columns += [
                score.alias(f"v_{domain}"),
                names.list.drop_nulls().list.unique(maintain_order=True).alias(f"r_{domain}"),
            ]
        votes = batch.select(columns)
        if self.learned is not None:
            probs = batch.select("row_id").join(
                rows_of(self.learned, batch), on="row_id", how="left", maintain_order="left"
            )
            weight = self.weights["learned"]
            votes = votes.with_columns(
                *(pl.col(f"v_{d}") + probs[f"l_{d}"].fill_null(0.0) * weight for d in self.learned_domains),
                *(
                    pl.when(probs[f"l_{d}"] >= 0.5)
                    .then(pl.col(f"r_{d}").list.concat(pl.lit(["learned"])))
                    .otherwise(pl.col(f"r_{d}"))
                    for d in self.learned_domains
                ),
            )
        return votes

    # global pass ------------------------------------------------------------------------------
    def prepare(self, ctx: StageContext) -> None:
        self.problem_votes = None
        if self.options["method"] == "learned":
            self._learn(ctx)
        if self.options["per_problem"]:
            sums = [
                pl.concat(
                    [
                        batch.select("row_id", "problem_id"),
                        self.votes(batch).select(f"v_{d}" for d in DOMAINS),
                    ],
                    how="horizontal",
                )
                for batch in ctx.input_batches()
            ]
            if sums:
                votes = pl.concat(sums)
                per_problem = (
                    votes.drop("row_id")
                    .group_by("problem_id")
                    .agg(pl.col(f"v_{d}").sum().alias(f"p_{d}") for d in DOMAINS)
                )
                # Per row, sorted by row_id, so that a batch joins only its slice (curate.stage.rows_of).
                self.problem_votes = (
                    votes.select("row_id", "problem_id")
                    .join(per_problem, on="problem_id", how="left", maintain_order="left")
                    .drop("problem_id")
                    .sort("row_id")
                )

    def _learn(self, ctx: StageContext) -> None:
        """Train the classifier on confidently rule-labelled rows and store its votes for every row."""
        opts = self.options
        self.learned = None
        labelled = []
        for batch in ctx.input_batches():
            decided = _decide(self.votes(batch), opts["other_prior"])
            sure = (decided["domain"] != "other") & (
                decided["domain_confidence"] >= opts["learned_min_confidence"]
            )
            labelled.append(batch.select("row_id", "problem_id").with_columns(decided["domain"]).filter(sure))
        train = pl.concat(labelled) if labelled else pl.DataFrame()
        stats: dict[str, Any] = {"method": "hashed word 1-2-gram logistic regression"}
        ctx.stats["classifier"] = stats
        if train.height:
            # A seeded sample when there are too many; 10% of problems held out to measure agreement.
            train = train.with_columns(
                pl.Series("_key", seeded_key(train["row_id"].to_list(), opts["seed"])),
                pl.Series(
                    "_holdout", [k < 0.1 for k in seeded_key(train["problem_id"].to_list(), opts["seed"])]
                ),
            ).filter(pl.col("_key").rank("ordinal") <= opts["learned_max_train"])
        classes = sorted(set(train["domain"].to_list())) if train.height else []
        stats.update(train_rows=train.height, classes=classes)
        if len(classes) < 2:
            stats["note"] = "fewer than two confidently labelled domains: classifier not trained"
            return
        texts = dict(_texts_of(ctx, set(train["row_id"].to_list())))
        train = train.with_columns(
            pl.col("row_id").replace_strict(texts, return_dtype=pl.String).alias("_text")
        )
        fit, held = train.filter(~pl.col("_holdout")), train.filter(pl.col("_holdout"))
        if fit.height and held.height and fit["domain"].n_unique() == len(classes):
            probe = HashedNgramClassifier(classes, seed=opts["seed"]).fit(
                fit["_text"].to_list(), fit["domain"].to_list()
            )
            agree = np.array(probe.predict(held["_text"].to_list())) == held["domain"].to_numpy()
            stats.update(holdout_rows=held.height, holdout_accuracy_vs_rules=round(float(agree.mean()), 4))
        model = HashedNgramClassifier(classes, seed=opts["seed"]).fit(
            train["_text"].to_list(), train["domain"].to_list()
        )
        learned = []
        for batch in ctx.input_batches():
            probs = model.predict_proba(training_text(batch))
            learned.append(
                batch.select("row_id").with_columns(
                    pl.Series(f"l_{d}", probs[:, i]) for i, d in enumerate(classes)
                )
            )
        self.learned, self.learned_domains = pl.concat(learned).sort("row_id"), classes

    # per batch --------------------------------------------------------------------------------
    def process(self, batch: pl.DataFrame) -> pl.DataFrame:
        votes = self.votes(batch)
        if self.problem_votes is not None:
            joined = batch.select("row_id").join(
                rows_of(self.problem_votes, batch), on="row_id", how="left", maintain_order="left"
            )
            votes = votes.with_columns(joined.select(pl.col(f"p_{d}").alias(f"v_{d}") for d in DOMAINS))
        decided = _decide(votes, self.options["other_prior"])
        batch = batch.with_columns(decided["domain"], decided["domain_confidence"], decided["domain_rules"])
        opts = self.options
        batch = decide(
            batch,
            pl.col("domain_confidence") < opts["min_confidence"],
            "low_confidence",
            pl.format("{} with confidence {}", pl.col("domain"), pl.col("domain_confidence").round(3)),
        )
        if opts["keep_domains"] is not None:
            batch = decide(
                batch,
                ~pl.col("domain").is_in(opts["keep_domains"]),
                "domain_excluded",
                pl.format("domain {} is not in keep_domains", pl.col("domain")),
            )
        return batch


def _decide(votes: pl.DataFrame, other_prior: float) -> pl.DataFrame:
    """Domain, confidence and the rules that voted for the winner, from the vote columns."""
    scores = votes.select(
        *(pl.col(f"v_{d}") + (other_prior if d == "other" else 0.0) for d in DOMAINS)
    ).to_numpy()
    order = np.argsort(-scores, axis=1, kind="stable")  # ties go to the earlier domain in DOMAINS
    rows = np.arange(len(scores))
    margin = scores[rows, order[:, 0]] - scores[rows, order[:, 1]]
    domain = pl.Series("domain", np.array(DOMAINS)[order[:, 0]].tolist(), pl.String)
    winner_rules = pl.lit(None, pl.String)
    for d in DOMAINS:
        winner_rules = (
            pl.when(pl.col("domain") == d).then(pl.col(f"r_{d}").list.join("+")).otherwise(winner_rules)
        )
    # No rule of the row itself: `other` by default, or its problem's other generations decided.
    fallback = pl.when(pl.col("domain") == "other").then(pl.lit("no evidence")).otherwise(pl.lit("problem"))
    winner_rules = pl.when(winner_rules == "").then(fallback).otherwise(winner_rules)
    return votes.with_columns(domain).select(
        "domain",
        pl.Series("domain_confidence", np.round(1.0 - np.exp(-margin), 6), pl.Float64),
        winner_rules.alias("domain_rules"),
    )


# The learned option ---------------------------------------------------------------------------


def _texts_of(ctx: StageContext, row_ids: set[int]) -> Iterator[tuple[int, str]]:
    for batch in ctx.input_batches():
        chosen = batch.filter(pl.col("row_id").is_in(row_ids))
        yield from zip(chosen["row_id"].to_list(), training_text(chosen), strict=True)


def training_text(batch: pl.DataFrame) -> list[str]:
    """What the classifier reads: the problem, then the start of the response."""
    problems = batch["problem"].fill_null("").to_list()
    responses = batch["response"].fill_null("").to_list()
    return [f"{p[:1500]}\n{r[:500]}" for p, r in zip(problems, responses, strict=True)]
