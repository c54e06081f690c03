"""Workspace locations: a plain path or a `file://` URI (pyarrow's filesystem URIs) give the same
workspace; another scheme (s3://) is refused with what is missing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from curate.errors import CurateError
from curate.pipeline import curate
from distill.cli import main
from tests.conftest import write_jsonl

ROWS = [
    {"problem": f"What is {i} + {i}?", "response": f"\\boxed{{{2 * i}}}", "answer": str(2 * i)}
    for i in range(6)
]


def _digests(ws: Path) -> dict[str, str]:
    return {
        str(p.relative_to(ws)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(ws.rglob("*.parquet"))
    }


def test_a_file_uri_workspace_is_the_path_it_names(tmp_path, capsys):
    traces = write_jsonl(tmp_path / "traces.jsonl", ROWS + ROWS[:2])
    plain, by_uri = tmp_path / "plain", tmp_path / "by uri" / "ws"  # a space: %20 in the URI
    curate([str(traces)], plain, progress=False, until="exact_dedup")
    uri = by_uri.as_uri()
    assert "%20" in uri
    curate([str(traces)], uri, progress=False, until="exact_dedup")
    assert (by_uri / "manifest.json").exists() and _digests(by_uri) == _digests(plain)
    capsys.readouterr()
    assert main(["sql", uri, "SELECT count(*) AS n FROM kept", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": 6}]


def test_other_filesystem_uris_are_refused_with_what_is_missing(tmp_path):
    traces = write_jsonl(tmp_path / "traces.jsonl", ROWS)
    with pytest.raises(CurateError, match=r"s3:// workspace is not supported yet.*docs/ray.md"):
        curate([str(traces)], "s3://bucket/ws", progress=False)
    with pytest.raises(CurateError, match="absolute path"):
        curate([str(traces)], "file://relative/ws", progress=False)
