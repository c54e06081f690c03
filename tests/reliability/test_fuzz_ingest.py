"""Fuzzed input (hypothesis): whatever a record holds, it becomes a trace row, kept or rejected
`malformed` with file, line and what broke; whatever a file holds, every line is accounted for
in the ledger, or the file gets one clear error."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curate.formats import ADAPTERS
from curate.ingest_fast import convert_record
from curate.workspace import Workspace

DETAIL, REASON = "_detail", "_reason"
ORIGIN = "fuzz.jsonl:7"

# JSON values as Python builds them from a parser: every type, NaN/Infinity, huge and odd strings
# (lone surrogates are what a `\ud800` escape decodes to), big ints, deep nesting.
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3)
    | st.just("x" * 200_000)
    | st.sampled_from(["", " ", "<think>", "</think>", "\\boxed{", "```python\n", "null", "[]", "{}"])
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)


def _deep(depth: int) -> object:
    value: object = "bottom"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


@st.composite
def records(draw, adapter: str) -> dict:
    """A record with the adapter's own field names (so detection and conversion are reached),
    each holding any value, plus stray fields."""
    fields = ADAPTERS[adapter].fields
    record = {name: draw(values) for name in draw(st.lists(st.sampled_from(fields), unique=True))}
    if draw(st.booleans()):
        record[draw(st.sampled_from(fields))] = _deep(draw(st.integers(50, 400)))
    record.update(draw(st.dictionaries(st.text(max_size=8), values, max_size=2)))
    return record


def _check_rows(rows: list[dict]) -> None:
    assert rows, "a record vanished"
    for row in rows:
        if row[REASON] is None:
            assert isinstance(row["problem"], str) and isinstance(row["id"], str) and row["origin"] == ORIGIN
        else:
            assert row[REASON] == "malformed"
            assert row[DETAIL].startswith(f"{ORIGIN}: ") and len(row[DETAIL]) > len(ORIGIN) + 2
            assert row["source"] == "fuzz" and row["origin"] == ORIGIN and row["meta"]


@pytest.mark.parametrize("adapter", sorted(ADAPTERS))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_record_of_every_adapter_becomes_a_row(adapter, data):
    record = data.draw(records(adapter))
    rows = convert_record(record, ORIGIN, None, adapter, "fuzz")
    _check_rows(rows)
    malformed = [r for r in rows if r[REASON] == "malformed"]
    assert not malformed or len(rows) == 1  # one verdict for the whole record when it cannot be read


@settings(max_examples=40, deadline=None)
@given(value=values)
def test_a_record_that_is_not_an_object_is_malformed_not_lost(value):
    if isinstance(value, dict):
        return
    _check_rows(convert_record(value, ORIGIN, json.dumps(value, default=str), "chat", "fuzz"))


# ---- whole files: raw bytes through the real ingest ------------------------------------------------

GOOD = {"prompt": "What is 2 + 2?", "response": "<think>2+2</think> \\boxed{4}", "reference": "4"}
raw_lines = st.one_of(
    st.just(json.dumps(GOOD).encode()),
    st.builds(lambda v: json.dumps({**GOOD, "response": v}, default=str).encode(), values),
    st.just(b'{"prompt": "a", "prompt": "b", "response": "dup keys"}'),
    st.just(b'{"prompt": "nan", "response": NaN, "reference": Infinity}'),
    st.just(b'{"prompt": "bad utf8 \xff\xfe", "response": "x"}'),
    st.just(b'{"prompt": "lone \\ud800 surrogate", "response": "x"}'),
    st.just(b'{"prompt": "truncated", "resp'),
    st.just(b"[1, 2, 3]"),
    st.just(b'"just a string"'),
    st.binary(max_size=60).filter(lambda b: b"\n" not in b and b"\r" not in b and b.strip()),
)


def _ingest(folder: Path, files: list[Path], *options: str) -> tuple[int, str]:
    """`distillery curate FILES --until ingest` in this process: exit code and stderr."""
    from distill.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(
            [
                "curate",
                *map(str, files),
                "--out",
                str(folder / "ws"),
                "--until",
                "ingest",
                "--quiet",
                *options,
            ]
        )
    return code, err.getvalue()


def _ledger(ws: Path) -> dict[str, list]:
    """origin -> reasons (None: kept) of every row ingest wrote, kept or rejected."""
    workspace = Workspace(ws)
    stage = workspace.stage("ingest")
    rows: dict[str, list] = {}
    for part in stage.parts():
        for origin in pq.read_table(part, columns=["origin"])["origin"].to_pylist():
            rows.setdefault(origin, []).append(None)
    rejected = workspace.rejected_path(stage.index, stage.name)
    if rejected.exists():
        table = pq.read_table(rejected, columns=["origin", "reason", "detail"])
        for origin, reason, detail in zip(
            *(table[c].to_pylist() for c in ("origin", "reason", "detail")), strict=True
        ):
            assert reason == "malformed" and detail.startswith(f"{origin}: ")
            rows.setdefault(origin, []).append(reason)
    info = stage.info()
    assert info["rows_in"] == info["rows_out"] + info["dropped"] == sum(map(len, rows.values()))
    return rows


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(raw_lines, min_size=1, max_size=12))
def test_every_line_of_a_fuzzed_file_is_in_the_ledger(tmp_path_factory, lines):
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / "fuzz.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b"\n" + b"\n".join(lines) + b"\n")  # first line: detectable
    code, err = _ingest(folder, [path], "--format", "prompt_response")
    assert "Traceback" not in err
    assert code in (0, 2), err
    rows = _ledger(folder / "ws")
    assert set(rows) == {f"{path}:{n}" for n in range(1, len(lines) + 2)}  # every line, 1-based


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.floats(0.05, 0.95))
def test_a_truncated_compressed_file_gets_one_clear_error_or_whole_lines(tmp_path_factory, kind, cut):
    folder = tmp_path_factory.mktemp(kind)
    text = "".join(json.dumps({**GOOD, "prompt": f"What is {i} + 2?"}) + "\n" for i in range(400)).encode()
    packed = gzip.compress(text) if kind == "gzip" else zstandard.ZstdCompressor().compress(text)
    path = folder / f"data.jsonl.{'gz' if kind == 'gzip' else 'zst'}"
    path.write_bytes(packed[: max(1, int(len(packed) * cut))])
    code, err = _ingest(folder, [path])
    assert "Traceback" not in err
    if code == 0:  # the lines before the cut: each one a row, the ledger balanced
        rows = _ledger(folder / "ws")
        assert all(origin.startswith(f"{path}:") for origin in rows)
    else:
        [line] = [x for x in err.splitlines() if x.startswith("distillery curate: error:")]
        assert path.name in line
