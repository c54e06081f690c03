"""The built-in demo corpus: deterministic, internally consistent (every clean row verifies, every
planted defect does not or is a copy), readable by curate and eval, and its planted defects
caught by the curation stages they are meant for."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from distill.demo.corpus import (
    CATCHERS,
    DEFECT_DOMAINS,
    DEFECTS,
    CorpusConfig,
    build_corpus,
    dropped_from_workspace,
    read_truth,
    score_curation,
    write_corpus,
)
from distill.generate.prompts import read_prompts
from distill.generate.verify import Check, verify

SMALL = CorpusConfig(
    seed=3, math=60, code=48, science=24, eval_math=12, eval_code=12, eval_science=6, defect_rate=0.1
)


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    return out, write_corpus(out, SMALL)


def test_same_config_same_bytes_and_seed_changes_it(small_corpus, tmp_path):
    _, files = small_corpus
    again = write_corpus(tmp_path / "again", SMALL)
    for name in ("traces", "truth"):
        assert getattr(again, name).read_bytes() == getattr(files, name).read_bytes()
    assert again.eval_sets["code"].read_bytes() == files.eval_sets["code"].read_bytes()
    other = build_corpus(CorpusConfig(**{**SMALL.__dict__, "seed": 4}))
    assert [r["messages"] for r in other.rows] != [
        json.loads(line)["messages"] for line in files.traces.read_text().splitlines()
    ]


def test_sizes_keys_and_truth(small_corpus):
    _, files = small_corpus
    rows = [json.loads(line) for line in files.traces.read_text().splitlines()]
    truth = read_truth(files.truth)
    assert [r["key"] for r in rows] == [t["key"] for t in truth]
    assert len({r["key"] for r in rows}) == len(rows)
    counts = Counter((t["domain"], t["defect"]) for t in truth)
    for domain in ("math", "code", "science"):
        assert counts[(domain, None)] == SMALL.clean(domain)
        for defect in DEFECTS:
            expected = SMALL.planted(defect, domain)
            assert counts[(domain, defect)] == expected
            assert (expected > 0) == (domain in DEFECT_DOMAINS[defect])
    position = {t["key"]: i for i, t in enumerate(truth)}
    for t in truth:
        if t["defect"] in ("exact_duplicate", "near_duplicate"):
            assert position[t["of"]] < position[t["key"]]  # the copy comes after its original
            assert next(x for x in truth if x["key"] == t["of"])["defect"] is None
    variants = Counter(t["variant"] for t in truth if t["defect"] == "malicious_code")
    assert set(variants) <= {"fork_bomb", "always_equal", "exit_before_asserts", "exit_in_call"}


def test_clean_rows_verify_and_planted_answers_do_not(small_corpus):
    _, files = small_corpus
    rows = [json.loads(line) for line in files.traces.read_text().splitlines()]
    truth = {t["key"]: t for t in read_truth(files.truth)}
    verdicts = verify([Check(r["messages"][1]["content"], r["reference"], r.get("tests")) for r in rows])
    by_defect: dict = {}
    for row, verdict in zip(rows, verdicts, strict=True):
        by_defect.setdefault(truth[row["key"]]["defect"], Counter())[verdict.status] += 1
    # Clean rows, copies and contaminated rows carry correct traces; the others never pass.
    for defect in (None, "exact_duplicate", "near_duplicate", "contaminated"):
        assert set(by_defect[defect]) == {"pass"}, (defect, by_defect[defect])
    for defect in ("wrong_answer", "malicious_code"):
        assert by_defect[defect]["pass"] == 0 and by_defect[defect]["fail"] > 0
    assert by_defect["truncated"]["pass"] <= 2  # a cut science trace may still name its option inside <think>


def test_eval_sets_are_readable_held_out_prompts(small_corpus):
    _, files = small_corpus
    rows = [json.loads(line) for line in files.traces.read_text().splitlines()]
    truth = {t["key"]: t for t in read_truth(files.truth)}
    for domain, path in files.eval_sets.items():
        items = read_prompts(str(path))
        assert len(items) == SMALL.held_out(domain)
        assert {item.domain for item in items} == {domain}
        assert (
            all(item.tests for item in items) if domain == "code" else all(item.reference for item in items)
        )
        prompts = {item.prompt() for item in items}
        # Only rows planted as contaminated show an eval prompt to the student.
        leaked = {truth[r["key"]]["defect"] for r in rows if r["messages"][0]["content"] in prompts}
        assert leaked <= {"contaminated"}
        assert (leaked == {"contaminated"}) == (domain in DEFECT_DOMAINS["contaminated"])


def test_val_sets_are_drawn_with_the_eval_sets_and_apart_from_training(small_corpus, tmp_path):
    """Val problems are drawn alternately with the eval problems (one mix of families for both), so
    asking for them changes the eval and training problems; they are none of those."""
    _, files = small_corpus
    sizes = {"math": 9, "code": 7}
    with_val = write_corpus(
        tmp_path, CorpusConfig(**{**SMALL.__dict__, **{f"val_{d}": n for d, n in sizes.items()}})
    )
    assert with_val.eval_sets["math"].read_bytes() != files.eval_sets["math"].read_bytes()
    science = with_val.eval_sets["science"].read_bytes()  # science asked none: its draws are the same
    assert science == files.eval_sets["science"].read_bytes()
    assert files.val_sets == {} and set(with_val.val_sets) == {"math", "code"}
    trained = {
        json.loads(line)["messages"][0]["content"] for line in with_val.traces.read_text().splitlines()
    }
    for domain, path in with_val.val_sets.items():
        items = read_prompts(str(path))
        assert len(items) == sizes[domain] and {item.domain for item in items} == {domain}
        held = {item.prompt() for item in read_prompts(str(with_val.eval_sets[domain]))}
        assert not {item.prompt() for item in items} & (trained | held)


def test_curation_catches_each_planted_defect(small_corpus, tmp_path):
    from curate.pipeline import curate
    from curate.stages import PIPELINE

    missing = {stage for stages in CATCHERS.values() for stage in stages} - set(PIPELINE) - {"quality"}
    if missing:
        pytest.fail(f"curate has no stage(s) {sorted(missing)}")
    _, files = small_corpus
    config = {
        "stages": {
            "decontaminate": {"benchmarks": [str(p) for p in files.eval_sets.values()]},
            "quality": {"require_final_answer": True},
        }
    }
    curate([str(files.traces)], tmp_path / "ws", config, workers=1, progress=False)
    report = score_curation(read_truth(files.truth), dropped_from_workspace(tmp_path / "ws"))
    assert set(report) == set(DEFECTS)
    for defect, scores in report.items():
        assert scores["planted"] == sum(SMALL.planted(defect, d) for d in ("math", "code", "science"))
        assert scores["recall"] == 1.0, (defect, scores)
        assert scores["precision"] == 1.0, (defect, scores)
        assert set(scores["by_stage"]) <= set(CATCHERS[defect])


def test_score_curation_counts_swaps_and_false_drops():
    truth = [
        {"key": "a", "defect": None, "of": None},
        {"key": "b", "defect": "exact_duplicate", "of": "a"},
        {"key": "c", "defect": None, "of": None},
        {"key": "d", "defect": "exact_duplicate", "of": "c"},
        {"key": "e", "defect": None, "of": None},
        {"key": "f", "defect": "wrong_answer", "of": None},
        {"key": "g", "defect": "truncated", "of": None},
        {"key": "h", "defect": "wrong_answer", "of": None},
    ]
    dropped = {
        "b": "exact_dedup",  # the copy itself
        "c": "exact_dedup",  # the original instead of its copy d: still a catch
        "e": "verify",  # a clean row: a false drop for both verify defects
        "f": "verify",
        "g": "verify",  # truncated rows are expected at verify: not a false drop of wrong_answer
        "h": "near_dedup",  # dropped, but not by the stage meant for it
    }
    report = score_curation(truth, dropped)
    assert report["exact_duplicate"] == {
        "planted": 2,
        "caught": 2,
        "recall": 1.0,
        "precision": 1.0,
        "by_stage": {"exact_dedup": 2},
    }
    assert report["wrong_answer"]["caught"] == 1 and report["wrong_answer"]["recall"] == 0.5
    assert report["wrong_answer"]["precision"] == 0.5
    assert report["wrong_answer"]["by_stage"] == {"near_dedup": 1, "verify": 1}
    assert report["truncated"]["precision"] == 0.5
    assert "near_duplicate" not in report


def test_every_family_reaches_training_at_the_demo_size(tmp_path):
    # Training problems that share word 8-grams with an eval problem are refused; a family whose
    # problems differ only in their numbers loses every training row whose numbers some eval problem
    # has, and its student never sees it (as the speed-times-time problems once did: 0 of 600 rows).
    # Families with few distinct problems (equations, fractions) are mostly taken by the eval set.
    import random

    import yaml

    from distill.demo.corpus import FAMILIES
    from distill.demo.run import DEMO_RECIPE

    config = CorpusConfig(**yaml.safe_load(DEMO_RECIPE.read_text())["corpus"])
    files = write_corpus(tmp_path, config)
    clean = [t for t in read_truth(files.truth) if t["defect"] is None]
    for domain, families in FAMILIES.items():
        counts = Counter(t["family"] for t in clean if t["domain"] == domain)
        for function, _ in families:
            family = function(random.Random(0)).family
            assert counts[family] >= 10, (domain, family, counts)
