"""Assembling the corpus: clean rows and planted defects per domain, shuffled (each copy after its
original), and the files `write_corpus` writes."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distill.demo.corpus.config import DOMAINS, TEACHER, CorpusConfig
from distill.demo.corpus.defects import malicious, near_duplicate, truncated
from distill.demo.corpus.distinct import Pool
from distill.demo.corpus.task import Task, trace
from distill.generate.prompts import PromptItem


@dataclass
class Corpus:
    rows: list[dict[str, Any]]  # trace records, in file order
    truth: list[dict[str, Any]]  # one per row, same order
    eval_sets: dict[str, list[dict[str, Any]]]
    val_sets: dict[str, list[dict[str, Any]]]


def _record(key: str, task: Task, problem: str, response: str) -> dict[str, Any]:
    prompt = PromptItem(problem, task.reference, task.tests_json, task.domain).prompt("r1")
    record: dict[str, Any] = {
        "key": key,
        "source": f"demo-{task.domain}",
        "teacher": TEACHER,
        "domain": task.domain,
        "messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}],
        "reference": task.reference,
    }
    if task.tests is not None:
        record["tests"] = task.tests_json
    return record


def _eval_record(key: str, task: Task) -> dict[str, Any]:
    if task.tests is not None:  # chat form: it is the format that carries tests
        return {
            "key": key,
            "domain": task.domain,
            "messages": [{"role": "user", "content": task.problem}],
            "tests": task.tests_json,
        }
    return {"key": key, "domain": task.domain, "problem": task.problem, "answer": task.reference}


class _Rows:
    """The rows of one domain as they are planted: (record, truth) pairs, copies kept apart."""

    def __init__(self, domain: str):
        self.domain = domain
        self.rows: list[tuple[dict, dict]] = []
        self.copies: list[tuple[dict, dict]] = []

    def add(
        self,
        task: Task,
        problem: str,
        response: str,
        defect: str | None = None,
        variant: str | None = None,
        of: str | None = None,
    ) -> str:
        key = f"{self.domain}-{len(self.rows) + len(self.copies):04d}"
        truth = {
            "key": key,
            "domain": self.domain,
            "family": task.family,
            "defect": defect,
            "variant": variant,
            "of": of,
        }
        (self.copies if of else self.rows).append((_record(key, task, problem, response), truth))
        return key


def _plant(
    domain: str, config: CorpusConfig, rng: random.Random
) -> tuple[_Rows, list[dict[str, Any]], list[dict[str, Any]]]:
    """One domain's rows (clean, then each defect), its eval set and its val set."""
    pool = Pool(domain, rng)
    # Eval and val problems are drawn alternately, first: both then have the same mix of families
    # (drawn after the rest, the val set took what the generator still had distinct problems for).
    held_out: list[Task] = []
    validation: list[Task] = []
    for index in range(max(config.held_out(domain), config.validation(domain))):
        for drawn, size in ((held_out, config.held_out(domain)), (validation, config.validation(domain))):
            if index < size:
                drawn.append(pool.draw(held_out=True))
    rows = _Rows(domain)
    clean = [pool.draw(held_out=False) for _ in range(config.clean(domain))]
    clean_keys = [rows.add(task, task.problem, trace(task.think, task.final)) for task in clean]
    for _ in range(config.planted("wrong_answer", domain)):
        task = pool.draw(held_out=False)
        rows.add(task, task.problem, trace(task.wrong_think, task.wrong_final), "wrong_answer")
    for _ in range(config.planted("truncated", domain)):
        task = pool.draw(held_out=False)
        variant, response = truncated(task, rng)
        rows.add(task, task.problem, response, "truncated", variant)
    for _ in range(config.planted("malicious_code", domain)):
        task = pool.draw(held_out=False)
        variant, response = malicious(task, rng)
        rows.add(task, task.problem, response, "malicious_code", variant)
    for task in rng.sample(held_out, min(len(held_out), config.planted("contaminated", domain))):
        rows.add(task, task.problem, trace(task.think, task.final), "contaminated")
    exact, near = config.planted("exact_duplicate", domain), config.planted("near_duplicate", domain)
    for n, index in enumerate(rng.sample(range(len(clean)), exact + near)):
        task = clean[index]
        if n < exact:
            rows.add(
                task, task.problem, trace(task.think, task.final), "exact_duplicate", of=clean_keys[index]
            )
        else:
            rows.add(
                task,
                near_duplicate(task),
                trace(task.think, task.final),
                "near_duplicate",
                of=clean_keys[index],
            )
    eval_set = [_eval_record(f"eval-{domain}-{i:04d}", task) for i, task in enumerate(held_out)]
    val_set = [_eval_record(f"val-{domain}-{i:04d}", task) for i, task in enumerate(validation)]
    return rows, eval_set, val_set


def build_corpus(config: CorpusConfig | None = None) -> Corpus:
    """The corpus in memory (see distill.demo.corpus); deterministic in `config` (default sizes when None)."""
    config = config or CorpusConfig()
    rng = random.Random(config.seed)
    entries: list[tuple[dict, dict]] = []
    copies: list[tuple[dict, dict]] = []
    eval_sets: dict[str, list[dict[str, Any]]] = {}
    val_sets: dict[str, list[dict[str, Any]]] = {}
    for domain in DOMAINS:
        rows, eval_sets[domain], val_sets[domain] = _plant(domain, config, random.Random(rng.getrandbits(64)))
        entries += rows.rows
        copies += rows.copies
    # Shuffle, then put each copy somewhere after its original: a dedup keeps the first occurrence.
    rng.shuffle(entries)
    for record, truth in copies:
        after = next(i for i, (_, t) in enumerate(entries) if t["key"] == truth["of"])
        entries.insert(rng.randint(after + 1, len(entries)), (record, truth))
    return Corpus([r for r, _ in entries], [t for _, t in entries], eval_sets, val_sets)


@dataclass(frozen=True)
class CorpusFiles:
    traces: Path
    truth: Path
    eval_sets: dict[str, Path]
    val_sets: dict[str, Path]


def write_corpus(out_dir: str | Path, config: CorpusConfig | None = None) -> CorpusFiles:
    """Write traces.jsonl, truth.jsonl, eval/<domain>.jsonl and (when asked for) val/<domain>.jsonl
    into `out_dir`."""
    from distill.generate.runner import write_jsonl

    out = Path(out_dir)
    corpus = build_corpus(config)
    traces = write_jsonl(corpus.rows, out / "traces.jsonl")
    truth = write_jsonl(corpus.truth, out / "truth.jsonl")
    eval_sets = {
        d: write_jsonl(rows, out / "eval" / f"{d}.jsonl") for d, rows in corpus.eval_sets.items() if rows
    }
    val_sets = {
        d: write_jsonl(rows, out / "val" / f"{d}.jsonl") for d, rows in corpus.val_sets.items() if rows
    }
    return CorpusFiles(traces, truth, eval_sets, val_sets)
