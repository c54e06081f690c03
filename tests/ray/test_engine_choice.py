"""Choosing the engine: the local engine never imports Ray, and a wrong choice is a clear error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from curate.errors import CurateError
from curate.pipeline import curate, load_config
from tests.conftest import write_jsonl

ROWS = [
    {"problem": f"What is {i} + {i}?", "response": f"\\boxed{{{2 * i}}}", "answer": str(2 * i)}
    for i in range(5)
]


def test_the_local_engine_runs_without_importing_ray(tmp_path: Path):
    source = write_jsonl(tmp_path / "t.jsonl", ROWS)
    script = (
        "import sys\n"
        "from curate.pipeline import curate\n"
        f"curate([{str(source)!r}], {str(tmp_path / 'ws')!r}, {{'engine': 'local'}}, progress=False)\n"
        "assert 'ray' not in sys.modules, 'the local engine imported ray'\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=Path(__file__).resolve().parents[2])
    assert (tmp_path / "ws" / "stages" / "09_shard").is_dir()


def test_an_unknown_engine_in_the_config_is_refused(tmp_path: Path):
    config = tmp_path / "curate.yaml"
    config.write_text("engine: spark\n")
    with pytest.raises(CurateError, match="engine must be one of local, ray"):
        load_config(config)


def test_a_ray_address_needs_the_ray_engine(tmp_path: Path):
    source = write_jsonl(tmp_path / "t.jsonl", ROWS)
    with pytest.raises(CurateError, match="--ray-address needs --engine ray"):
        curate([str(source)], tmp_path / "ws", {}, progress=False, ray_address="127.0.0.1:6379")
