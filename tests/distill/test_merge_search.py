"""`distillery merge-search`: the search loop (budget, resume, Parquet table, objective) and one
end-to-end run that merges tiny students in memory and scores them with the eval machinery."""

from __future__ import annotations

import json
import math

import polars as pl
import pytest
import yaml

from distill.cli import main
from distill.merge_search import Plan, SearchError, load_plan, model_parameters, search, worst_share


def _plan(tmp_path, **overrides) -> Plan:
    plan = Plan(
        base="base",
        students={"math": "s_math", "code": "s_code"},
        validation={"math": "v_math", "code": "v_code"},
        methods=["ties", "task_arithmetic"],
        budget=12,
        explore=4,
        seed=3,
        out=str(tmp_path),
    )
    for key, value in overrides.items():
        setattr(plan, key, value)
    return plan


class Landscape:
    """Scores as a known function of the merge parameters: each domain does best when its student's
    weight is near 1.3 (and, for ties, its density near 0.35), away from the centre the search starts at."""

    def __init__(self):
        self.calls = []

    def __call__(self, label, what):
        self.calls.append(label)
        if isinstance(what, str):  # references: base 0.2, each student 0.7 on its own domain
            return {d: 0.7 if what == f"s_{d}" else 0.2 for d in ("math", "code")}
        method, parameters = what.method, what.model_parameters
        scores = {}
        for domain, params in zip(("math", "code"), parameters, strict=True):
            fit = (
                1 - abs(params["weight"] - 1.3) - (abs(params["density"] - 0.35) if method == "ties" else 0.3)
            )
            scores[domain] = 0.2 + 0.5 * max(0.0, fit)
        return scores


def test_search_spends_the_budget_improves_and_resumes_from_its_table(tmp_path):
    plan = _plan(tmp_path)
    table = tmp_path / "candidates.parquet"
    first = search(plan, Landscape(), table)
    assert first.evaluated == 3 + 12  # base, two students, then the budget
    frame = pl.read_parquet(table)
    assert frame.height == 15 and {"score_math", "share_code", "worst_share", "parameters"} <= set(
        frame.columns
    )
    candidates = frame.filter(pl.col("kind") == "candidate")
    centres = candidates.head(2)["worst_share"].to_list()  # each method at the centre of the ranges
    assert first.best["worst_share"] == candidates["worst_share"].max() > max(centres)
    # worst share = min over domains of (score - 0.2) / 0.5
    row = candidates.row(5, named=True)
    assert row["worst_share"] == pytest.approx(
        min((row["score_math"] - 0.2) / 0.5, (row["score_code"] - 0.2) / 0.5)
    )

    again = Landscape()
    resumed = search(plan, again, table)
    assert resumed.evaluated == 0 and again.calls == []  # everything read back
    assert [r["key"] for r in resumed.rows] == [r["key"] for r in first.rows]

    longer = Landscape()
    extended = search(_plan(tmp_path, budget=15), longer, table)
    assert extended.evaluated == 3 and len(longer.calls) == 3  # only the new candidates
    with pytest.raises(SearchError, match="different plan"):
        search(_plan(tmp_path, seed=4), Landscape(), table)


def test_a_moved_run_reads_its_table_back_and_changed_inputs_start_again(tmp_path):
    """The plan's digest reads the models' weights and config and the validation files, not their paths
    (nor the model card, which names paths)."""
    import shutil
    from pathlib import Path

    def plan_in(root):
        return _plan(
            root / "search",
            base=str(root / "base"),
            students={d: str(root / f"s_{d}") for d in ("math", "code")},
            validation={d: str(root / f"v_{d}.jsonl") for d in ("math", "code")},
        )

    first = tmp_path / "first"
    for name in ("base", "s_math", "s_code"):
        (first / name).mkdir(parents=True)
        (first / name / "model.safetensors").write_bytes(name.encode())
        (first / name / "config.json").write_text("{}")
    for domain in ("math", "code"):
        (first / f"v_{domain}.jsonl").write_text(domain)
    landscape = Landscape()

    def score(label, what):  # the landscape knows the references by their folder's name
        return landscape(label, Path(what).name if isinstance(what, str) else what)

    search(plan_in(first), score, first / "search" / "candidates.parquet")
    moved = tmp_path / "moved"
    shutil.copytree(first, moved)
    (moved / "s_code" / "README.md").write_text(f"a card naming {moved}")
    landscape.calls.clear()
    again = search(plan_in(moved), score, moved / "search" / "candidates.parquet")
    assert again.evaluated == 0 and landscape.calls == []
    (moved / "v_math.jsonl").write_text("other problems")
    with pytest.raises(SearchError, match="different plan"):
        search(plan_in(moved), score, moved / "search" / "candidates.parquet")


def test_candidates_map_into_the_ranges_and_gradients():
    from distill.merge_search import Candidate

    plan = Plan(
        base="b",
        students={"math": "m", "code": "c"},
        validation={"math": "x", "code": "y"},
        weight=(0.0, 2.0),
        density=(0.2, 1.0),
        gradient=True,
    )
    params = model_parameters(plan, Candidate("ties", (0.5, 1.0, 0.0, 0.5, 0.25, 0.25, 1.0, 1.0)))
    assert params == [
        {"weight": [1.0, 2.0], "density": [0.2, 0.6]},
        {"weight": [0.5, 0.5], "density": [1.0, 1.0]},
    ]
    # task_arithmetic has no density, so none is passed
    assert "density" not in model_parameters(plan, Candidate("task_arithmetic", (0.5,) * 8))[0]


def test_worst_share_ignores_domains_without_gain():
    assert worst_share({"a": 0.5, "b": 0.3}, {"a": 0.2, "b": 0.2}, {"a": 0.8, "b": 0.4}) == pytest.approx(0.5)
    assert worst_share({"a": 0.9, "b": 0.0}, {"a": 0.2, "b": 0.2}, {"a": 0.8, "b": 0.1}) == pytest.approx(
        7 / 6
    )
    assert math.isnan(worst_share({"a": 0.1}, {"a": 0.2}, {"a": 0.2}))


def test_plan_is_checked(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text(
        yaml.safe_dump(
            {"base": "b", "students": {"math": "m"}, "validation": {"math": "v"}, "methods": ["slerp"]}
        )
    )
    with pytest.raises(SearchError, match="cannot be searched"):
        load_plan(path)
    path.write_text(yaml.safe_dump({"base": "b", "students": {"math": "m"}, "validation": {"code": "v"}}))
    with pytest.raises(SearchError, match="one file per student domain"):
        load_plan(path)


@pytest.mark.usefixtures("two_students")
def test_merge_search_end_to_end_in_memory(tiny_model, tmp_path, capsys):
    """Two students of a tiny model (base + noise), scored with distillery's verifiers after an
    in-memory merge. Random tiny models solve nothing, so no student gains: every candidate is
    still merged, evaluated and stored, and the command says that nothing could be kept."""
    plan = {
        "base": str(tiny_model),
        "students": {"math": "math", "code": "code"},
        "validation": {"math": "math.jsonl", "code": "code.jsonl"},
        "methods": ["ties", "della_linear"],
        "budget": 3,
        "sampling": {"n": 1, "temperature": 0.0, "max_tokens": 4},
        "out": "search",
    }
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(plan))
    code = main(["merge-search", str(tmp_path / "plan.yaml"), "--quiet"])
    assert code == 1
    assert "no student gained" in capsys.readouterr().err
    frame = pl.read_parquet(tmp_path / "search" / "candidates.parquet")
    assert frame["kind"].to_list() == ["reference"] * 3 + ["candidate"] * 3
    assert frame.filter(pl.col("kind") == "candidate")["method"].to_list()[:2] == ["ties", "della_linear"]
    assert main(["merge-search", str(tmp_path / "plan.yaml"), "--quiet"]) == 1
    assert "0 evaluations run (6 read back)" in capsys.readouterr().out


def test_chained_orders_and_scale_are_searched_and_resumed(tmp_path):
    """With chain and scale, candidates take merge orders (one merge, or a chain of the students in
    some order) and a lambda; the run resumes from its table like any other."""
    plan = _plan(
        tmp_path,
        students={"math": "s_math", "code": "s_code", "science": "s_science"},
        validation={"math": "v_math", "code": "v_code", "science": "v_science"},
        chain=True,
        scale=(0.5, 2.0),
        budget=16,
        explore=8,
    )

    class Chained:
        """Best with the chain science > math > code and lambda near 1.5."""

        def __init__(self):
            self.calls = 0

        def __call__(self, label, what):
            self.calls += 1
            if isinstance(what, str):
                return {d: 0.7 if what == f"s_{d}" else 0.2 for d in ("math", "code", "science")}
            fit = (
                1 - abs(what.parameters.get("lambda", 1.0) - 1.5) - (0.0 if what.order == (2, 0, 1) else 0.3)
            )
            return {d: 0.2 + 0.5 * max(0.0, fit) for d in ("math", "code", "science")}

    table = tmp_path / "candidates.parquet"
    first = search(plan, Chained(), table)
    frame = pl.read_parquet(table).filter(pl.col("kind") == "candidate")
    orders = [json.loads(m)["order"] for m in frame["merge"].to_list()]
    assert None in orders and any(o is not None for o in orders)  # both kinds were tried
    for merge in map(json.loads, frame["merge"].to_list()):  # both methods are scaled and normalised
        assert merge["parameters"]["lambda"] >= 0.5 and merge["parameters"]["normalize"] is True
    assert first.best["worst_share"] == frame["worst_share"].max()
    again = Chained()
    assert search(plan, again, table).evaluated == 0 and again.calls == 0


def test_the_best_config_merges_what_was_scored_in_memory(tiny_model, noisy_student, tmp_path):
    """best.yaml (a `steps:` config for a chain) merged on disk by `distillery merge` gives the very
    tensors the search scored in memory, for a sparsifying random method too."""
    from safetensors.torch import load_file

    import merge
    from distill.merge_search import Candidate, best_config, candidate_merge, merge_in_memory
    from distill.merge_search import _encode as encode

    domains = ("math", "code", "science")
    for index, domain in enumerate(domains):
        noisy_student(tmp_path / domain, index)
    base = load_file(tiny_model / "model.safetensors")
    plan = Plan(
        base=str(tiny_model),
        students={d: str(tmp_path / d) for d in domains},
        validation={d: "unused" for d in domains},
        chain=True,
        scale=(0.5, 2.0),
        seed=7,
    )
    students = [load_file(tmp_path / d / "model.safetensors") for d in domains]
    for method, order in (("dare_ties", (1, 2, 0)), ("ties", None)):
        candidate = Candidate(method, (0.2, 0.9, 0.5, 0.4, 0.8, 0.1, 0.7), order)
        scored = merge_in_memory(candidate_merge(plan, candidate), base, students, plan.seed)
        config = best_config(plan, {"merge": encode(candidate_merge(plan, candidate))})
        assert ("steps" in config) == (order is not None)
        path = tmp_path / f"{method}.yaml"
        path.write_text(yaml.safe_dump(config))
        merge.run_config(path, tmp_path / f"out_{method}", steps_dir=tmp_path / f"steps_{method}")
        written = load_file(tmp_path / f"out_{method}" / "model-00001-of-00001.safetensors")
        assert set(written) == set(scored)
        for name, tensor in scored.items():
            assert torch_equal(written[name], tensor), name


def torch_equal(a, b) -> bool:
    import torch

    return a.dtype == b.dtype and bool(torch.equal(a, b))
