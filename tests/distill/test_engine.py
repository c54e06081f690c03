"""The step engine's scheduling: a step starts once the steps it reads have finished; with `parallel`
the ready ones run side by side in worker processes, and one that nothing could run beside runs in
the calling process."""

from __future__ import annotations

import functools
import json
import os
import time
from pathlib import Path

from distill.recipe.engine import Step, run_steps

# name -> the steps it reads: b and c both read a; d reads b and c.
GRAPH = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}
TOGETHER = ("b", "c")  # with `meet`, each waits until the other has started: both finish only side by side


def body(root: Path, meet: bool, name: str) -> dict:
    for needed in GRAPH[name]:
        assert (root / needed / "done.json").is_file(), f"{name} started before {needed} finished"
    (root / name / "started").write_text("")
    if meet and name in TOGETHER:
        other = next(n for n in TOGETHER if n != name)
        while not (root / other / "started").exists():  # run one at a time, it hangs: pytest-timeout fails it
            time.sleep(0.02)
    (root / name / "done.json").write_text(json.dumps({"pid": os.getpid()}))
    return {"name": name}


def plan(root: Path, order: list[str], meet: bool) -> list[Step]:
    steps: dict[str, Step] = {}
    for name in sorted(GRAPH):
        steps[name] = Step(
            name,
            "group",
            root / name,
            f"fp-{name}",
            functools.partial(body, root, meet, name),
            root / ".steps",
        )
    for name, needed in GRAPH.items():
        steps[name].after = [steps[n] for n in needed]
    return [steps[n] for n in order]


def execute_named(root: Path, name: str) -> None:
    """The worker: plan again in the worker process and run step `name`."""
    next(s for s in plan(root, sorted(GRAPH), meet=True) if s.name == name).execute()


def pid(root: Path, name: str) -> int:
    return json.loads((root / name / "done.json").read_text())["pid"]


def test_one_at_a_time_a_step_waits_for_what_it_reads_whatever_the_order(tmp_path):
    lines: list[str] = []
    executed = run_steps(plan(tmp_path, ["d", "c", "b", "a"], meet=False), set(), 1, None, lines.append)
    assert [s.name for s in executed] == ["d", "c", "b", "a"]  # the steps that ran, as listed
    assert [line.split("] ")[1].split(":")[0] for line in lines] == ["a", "c", "b", "d"]
    assert {pid(tmp_path, n) for n in GRAPH} == {os.getpid()}


def test_in_parallel_ready_steps_run_side_by_side_and_a_lone_one_in_this_process(tmp_path):
    lines: list[str] = []
    worker = functools.partial(execute_named, tmp_path)
    run_steps(plan(tmp_path, sorted(GRAPH), meet=True), set(), 2, worker, lines.append)
    finished = [line.split("] ")[1].split(":")[0] for line in lines]
    assert finished[0] == "a" and finished[-1] == "d" and set(finished[1:3]) == {"b", "c"}
    # b and c met (each waited for the other to start) in two worker processes; a and d, each the
    # only step that could run, ran here.
    assert pid(tmp_path, "b") != pid(tmp_path, "c") and os.getpid() not in {
        pid(tmp_path, "b"),
        pid(tmp_path, "c"),
    }
    assert pid(tmp_path, "a") == pid(tmp_path, "d") == os.getpid()
    # Finished steps are reused by the next run.
    again: list[str] = []
    assert run_steps(plan(tmp_path, sorted(GRAPH), meet=True), set(), 2, worker, again.append) == []
    assert all("done earlier" in line for line in again)
