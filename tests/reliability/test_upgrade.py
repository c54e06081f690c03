"""An upgraded distillery never reuses what old code computed: change a stage's code in a copy of
the package and that stage and the ones after it rerun, the ones before it are reused."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.helpers import copy_code, make_corpus, run_curate

ARGS = ("corpus.jsonl", "--out", "ws")


def _reused(stdout: str) -> list[str]:
    return [line.split()[1] for line in stdout.splitlines() if line.rstrip().endswith("reused")]


def _ran(stdout: str) -> list[str]:
    rows = [line.split() for line in stdout.splitlines() if line[:2].isdigit()]
    return [row[1] for row in rows if row[-1] != "reused"]


def _edit(path: Path, line: str) -> None:
    path.write_text(path.read_text() + f"\n{line}\n")


@pytest.mark.slow
def test_changed_stage_code_reruns_that_stage_and_the_later_ones(tmp_path):
    code = copy_code(tmp_path / "code")
    make_corpus(tmp_path / "corpus.jsonl", math_rows=30, code_rows=6)
    first = run_curate(*ARGS, cwd=tmp_path, code=code)
    assert first.returncode == 0, first.stderr
    order = _ran(first.stdout)
    assert order[:2] == ["ingest", "normalize"] and order[-1] == "shard"

    same = run_curate(*ARGS, cwd=tmp_path, code=code)
    assert _reused(same.stdout) == order and "redo" not in same.stderr

    _edit(code / "curate" / "stages" / "quality.py", "UPGRADED = True  # a new release of the stage")
    upgraded = run_curate(*ARGS, cwd=tmp_path, code=code)
    assert upgraded.returncode == 0, upgraded.stderr
    at = order.index("quality")
    assert _reused(upgraded.stdout) == order[:at]
    assert _ran(upgraded.stdout) == order[at:]
    assert f"redo {at:02d} quality (and so the stages after it): its code changed" in upgraded.stderr

    # code the sandbox runs is shipped to it, never imported by the host: it counts all the same
    _edit(code / "curate" / "verify" / "code" / "inside" / "runner.py", "UPGRADED = True")
    sandbox = run_curate(*ARGS, cwd=tmp_path, code=code)
    assert sandbox.returncode == 0, sandbox.stderr
    at = order.index("verify")
    assert _reused(sandbox.stdout) == order[:at] and _ran(sandbox.stdout) == order[at:]
