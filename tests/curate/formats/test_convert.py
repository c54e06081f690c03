"""`curate.formats.convert`: the public record -> partial trace rows function that code outside the
ingest stage (prompt reading for `generate`/`eval`) uses instead of the stage's internals."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from curate.formats import Malformed, convert


def test_convert_maps_a_record_by_its_adapter_and_renames_columns_first():
    rows = convert(
        {"Question": "What is 6*7?", "Answer": 42},
        "problem_set",
        {"problem": "Question", "reference": "Answer"},
    )
    assert [(r["problem"], r["reference"]) for r in rows] == [("What is 6*7?", "42")]
    generations = convert({"problem": "1+1?", "answer": "2", "generations": ["a", "b"]}, "openr1")
    assert [r["response"] for r in generations] == ["a", "b"]


def test_convert_refuses_a_record_without_a_problem():
    with pytest.raises(Malformed, match="problem"):
        convert({"messages": [{"role": "assistant", "content": "hi"}]}, "chat")


def test_read_prompts_does_not_reach_into_the_ingest_stage(tmp_path):
    data = tmp_path / "p.jsonl"
    data.write_text(json.dumps({"problem": "What is 2+2?", "answer": "4"}) + "\n" + '{"answer": "5"}\n')
    script = f"""
import sys
from curate.errors import InputError
from distill.generate.prompts import read_prompts
try:
    read_prompts({str(data)!r})
except InputError as error:
    print("error:", error)
print("ingest imported:", "curate.stages.ingest" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert "ingest imported: False" in out
    assert f"error: {data}:2:" in out, "a bad record is named by file and line"
