"""The fast ingest path (curate.ingest_fast) writes the same bytes as the per-record path: on every
shared data file and on a chat file with planted bad lines, where the ledger still balances and
each malformed line keeps its line, field and reason."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

import sql
from curate.formats import detect_format
from curate.ingest_fast import CASE_TWINS, MAPPERS, convert_record, fast_record, reasoning_column, trace_ids
from curate.pipeline import curate
from curate.readers import iter_chunks, resolve_inputs
from curate.schema import problem_id, trace_id
from curate.stages.ingest import line_blocks
from curate.think import CLOSE, OPEN, reasoning_of
from tests.conftest import SHARED_DATA, shared_file


def test_trace_ids_are_the_schema_ids():
    for problem, response in [
        ("", None),
        ("", ""),
        ("q", "a"),
        ("é\u212a", "\ud800 lone"),
        ("a\x1fb", "\x00"),
    ]:
        assert trace_ids(problem, response) == (trace_id(problem, response), problem_id(problem))


def test_reasoning_column_is_the_think_rule():
    """The block's string search gives curate.think's reasoning on random mixes of markers in any
    case, stray `<`, white space str.strip takes (\\x1c-\\x1f too), non-ASCII text and CASE_TWINS."""
    rng = random.Random(19)
    pieces = ["<think>", "</think>", "<THINK>", "</Think>", "<|begin_of_thought|>", "<|END_of_thought|>"]
    pieces += [
        "<|begin_of_thought",
        "</think",
        "<<",
        "<",
        ">",
        "a<b",
        " ",
        "\n",
        "\x1c",
        "\t",
        "x",
        "é",
        "∑",
        "\u212a",
        "\u0130",
        "\u0131",
    ]
    responses = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 10))) for _ in range(20000)]
    responses += [None, "", "</thin\u212a>x", "<think>ok</think>a", "a</think>b</think>c"]
    responses += ["<th\u0131nk>é</think>a", "x<think>y</th\u0130nk>z", "∑<THINK>≤</think>b"]
    assert reasoning_column(responses) == [reasoning_of(r) for r in responses]


def test_case_twins_are_every_character_beyond_ascii_a_marker_matches():
    """The string search of reasoning_column is exact where text holds none of CASE_TWINS: no
    other character beyond ASCII matches a marker's character case-insensitively, and none
    lowercases to ASCII (so a lowercased slice with one never equals a marker)."""
    marker_chars = set(re.sub(r"\\(.)", r"\1", OPEN + CLOSE))  # every character of every marker
    one = re.compile("(?i)[" + re.escape("".join(sorted(marker_chars))) + "]")
    beyond = (chr(cp) for cp in range(0x80, sys.maxunicode + 1) if not 0xD800 <= cp <= 0xDFFF)
    twins = [c for c in beyond if one.fullmatch(c) or any(x.isascii() for x in c.lower())]
    assert sorted(twins) == sorted(CASE_TWINS)


def chat(problem: str, response: str, **extra) -> dict:
    return {
        "messages": [{"role": "user", "content": problem}, {"role": "assistant", "content": response}],
        **extra,
    }


GOOD = [
    chat("1+1?", "<think>add</think>2", answer="2", source="synthetic"),
    chat("2+2?", "  <THINK> four </THINK> 4 ", answer=4, model=None, teacher="R1"),
    chat("3.5?", "3.5", answer=3.5, source=""),
    chat("é?", "ünïcode</think>ok", gold="x", extra={"nested": [1, 2.5, None, True]}),
    {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "<think>t</think>a"}]},
    chat("big", "int", answer=123456789012345678901234, reference=None),
    chat("cut", "<think>never closed", source="olympiads"),
]
# Valid records the fast mapper leaves to the per-record path (and must still match it).
OTHER_SHAPES = [
    {"messages": [{"role": "system", "content": "s"}, *chat("q", "a")["messages"]]},
    {
        "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "a", "reasoning_content": "r"},
        ]
    },
    {"messages": [{"role": "user", "content": "q", "name": "u"}, {"role": "assistant", "content": "a"}]},
    chat("q", "a", meta={"from": "generate"}),
    chat("q", "a", tests=json.dumps({"kind": "stdio", "cases": [{"input": "1", "output": "1"}]})),
    {"messages": [{"role": "user", "content": "q"}]},
]
TURNS = '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]'
# Lines the per-record path rejects as malformed, each with the field its detail must name.
BAD = [
    ('{"messages": [', "broken JSON"),
    (b'{"messages": "\xff"}', "invalid UTF-8"),
    ("[1, 2]", "expected a JSON object"),
    (json.dumps(chat("q", "a", answer=True)), "answer"),
    (json.dumps(chat("q", "a", model=7)), "model"),
    (
        json.dumps({"messages": [{"role": "user", "content": 5}, {"role": "assistant", "content": "a"}]}),
        "content",
    ),
    (
        json.dumps({"messages": [{"role": "robot", "content": "q"}, {"role": "assistant", "content": "a"}]}),
        "role",
    ),
    (
        json.dumps(
            {"messages": [{"role": "assistant", "content": "a"}, {"role": "assistant", "content": "b"}]}
        ),
        "no user turn",
    ),
    (
        '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "x": 1e400}',
        "broken JSON",
    ),
    (TURNS.replace('"q"', '"\\ud800 lone"') + "}", "broken JSON"),  # a lone surrogate escape
    (TURNS + ', "answer": NaN}', "broken JSON"),
    (TURNS + ', "answer": -Infinity}', "broken JSON"),
    (TURNS + ', "answer": "1",}', "broken JSON"),  # a trailing comma
    (TURNS.replace('"a"', '"tab\there"') + "}", "broken JSON"),  # a raw control character
    (TURNS + "} trailing", "broken JSON"),
    ("\ufeff" + TURNS + "}", "broken JSON"),  # a byte order mark
    (TURNS.encode().replace(b'"q"', b'"\xed\xa0\x80"') + b"}", "invalid UTF-8"),  # a surrogate's bytes
]
# Valid lines a columnar reader could read otherwise: both paths must give the same rows.
RAW_GOOD = [
    TURNS
    + ', "answer": "1", "answer": "2", '
    + TURNS[1:].replace('"q"', '"q2"')
    + "}",  # the last key counts
    TURNS.replace('"a"', '"\\ud83d\\ude00 \\u0000 \\/"') + "}",  # escapes, a surrogate pair
    "   " + TURNS + ', "answer": 12345678901234567890123}\r',  # white space around, CRLF
]


PROBLEM_GOOD = [
    {"problem": "1+1?", "solution": "\\boxed{2}", "answer": "2", "level": "Level 1", "type": "Algebra"},
    {"question": "Janet has 3.", "answer": "She has 1,000.\n#### 1,000"},
    {"prompt": "AIME", "answer": 70, "difficulty": 5.0, "source": "aime", "id": None},
    {"problem": "p", "answer": 27.0, "url": "https:\\/\\/x", "question": "also here", "dataset": "amc"},
]
PROBLEM_OTHER = [
    {"problem": "p", "answer": "1", "tests": None},
    {"problem": "p", "meta": {"k": 1}},
]
PROBLEM_BAD = [
    (json.dumps({"problem": 5, "answer": "1"}), "problem"),
    (json.dumps({"problem": "p", "solution": ["a"]}), "solution"),
    (json.dumps({"problem": "p", "answer": {"x": 1}}), "answer"),
    ('{"problem": "p", "answer": "1",}', "broken JSON"),
    ('{"problem": "p", "answer": NaN}', "broken JSON"),
]
PROBLEM_RAW_GOOD = ['{"problem": "p", "problem": "q", "answer": "1", "level": 1.5e3}']
PLANTED = {
    "chat": (GOOD, OTHER_SHAPES, BAD, RAW_GOOD),
    "problem_set": (PROBLEM_GOOD, PROBLEM_OTHER, PROBLEM_BAD, PROBLEM_RAW_GOOD),
}


def planted_file(path: Path, fmt: str) -> Path:
    good, other, bad, raw_good = PLANTED[fmt]
    lines = [json.dumps(r, ensure_ascii=i % 2 == 0).encode() for i, r in enumerate(good + other)]
    lines += [text.encode() for text in raw_good]
    lines[3:3] = [text if isinstance(text, bytes) else text.encode() for text, _ in bad]
    lines.insert(1, b"")  # a blank line counts as a line, and is no row
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def parts(ws: Path) -> dict[str, bytes]:
    return {str(p.relative_to(ws)): p.read_bytes() for p in sorted((ws / "stages").rglob("*.parquet"))}


def both_paths(inputs: list[str], tmp_path: Path, fmt: str | None = None) -> tuple[Path, Path]:
    fast, slow = tmp_path / "fast", tmp_path / "slow"
    curate(inputs, fast, {"format": fmt}, progress=False, until="ingest")
    curate(
        inputs, slow, {"format": fmt, "stages": {"ingest": {"fast": False}}}, progress=False, until="ingest"
    )
    return fast, slow


@pytest.mark.parametrize("fmt", PLANTED)
def test_the_fast_mapper_takes_the_plain_shapes_and_leaves_the_others(fmt):
    good, other, *_ = PLANTED[fmt]
    for record in good:
        rows = MAPPERS[fmt](record)
        assert rows is not None, record
        fast = fast_record(record, "f:1", fmt, "f", None)
        assert fast == convert_record(record, "f:1", None, fmt, "f")
    for record in other:
        assert MAPPERS[fmt](record) is None, record


@pytest.mark.parametrize("fmt", PLANTED)
def test_planted_bad_lines_byte_identical_and_the_ledger_balances(tmp_path, fmt):
    good, other, bad, raw_good = PLANTED[fmt]
    data = planted_file(tmp_path / "planted.jsonl", fmt)
    fast, slow = both_paths([str(data)], tmp_path, fmt)
    assert parts(fast) and parts(fast) == parts(slow)
    con = sql.connect(fast)
    traces, kept, rejected = (
        con.execute(f"select count(*) from {v}").fetchone()[0] for v in ("traces", "kept", "rejected")
    )
    assert traces == kept + rejected == len(good) + len(other) + len(bad) + len(raw_good)
    query = "select detail from rejected where reason = 'malformed' order by row_id"
    details = [d for (d,) in con.execute(query).fetchall()]
    assert len(details) == len(bad)
    for detail, (_, expected), line in zip(details, bad, range(5, 5 + len(bad)), strict=True):
        assert detail.startswith(f"{data}:{line}: ") and expected in detail, detail


@pytest.mark.parametrize("chunk_bytes", [1, 7, 64, 1 << 20])
@pytest.mark.parametrize("tail", [b"\n", b"", b"\r\n\n  \n"])
def test_line_blocks_give_the_lines_of_iter_chunks(tmp_path, chunk_bytes, tail):
    """The workers' line blocks hold the same numbered lines as the readers' chunks: blank lines
    counted and skipped, CRLF stripped, a line longer than a block kept whole, no final newline."""
    body = b'{"a": 1}\r\n\n   \n{"b": "' + b"x" * 100 + b'"}\n\n{"c": 3}\r\r\n{"d": 4}'
    path = tmp_path / "lines.jsonl"
    path.write_bytes(body + tail)
    inp = resolve_inputs([str(path)])[0]
    expected = [line for chunk in iter_chunks(inp) for line in chunk.lines]
    got = [line for block in line_blocks(inp, chunk_bytes) for line in block.chunk().lines]
    assert got == expected and len(expected) == 4


def test_worker_pool_chunks_byte_identical(tmp_path):
    """Small chunks through two worker processes (line blocks read by the workers, tables back
    through Arrow IPC spool files): the same workspace bytes as the per-record path in one
    process, and no spool file left in the workspace."""
    data = planted_file(tmp_path / "planted.jsonl", "chat")
    lines = data.read_bytes().splitlines(keepends=True)
    data.write_bytes(b"".join(lines * 40))  # 40 copies: chunks of ~40 lines, so the pool runs
    fast, slow = tmp_path / "fast", tmp_path / "slow"
    curate(
        [str(data)],
        fast,
        {"stages": {"ingest": {"chunk_bytes": 4096}}},
        workers=2,
        progress=False,
        until="ingest",
    )
    config = {"stages": {"ingest": {"chunk_bytes": 4096, "fast": False}}}
    curate([str(data)], slow, config, workers=1, progress=False, until="ingest")
    assert parts(fast) and parts(fast) == parts(slow)
    assert sql.connect(fast).execute("select count(*) from rejected").fetchone()[0] == 40 * len(BAD)
    assert not list(fast.rglob("*.arrow")) and not list(fast.rglob("_spool"))


@pytest.mark.parametrize(
    "relative",
    sorted(str(p.relative_to(SHARED_DATA)) for p in SHARED_DATA.glob("*/*.jsonl")) or ["math/math500.jsonl"],
)
def test_shared_files_byte_identical(tmp_path, relative):
    path = shared_file(relative)
    fast, slow = both_paths([str(path)], tmp_path)
    assert parts(fast) and parts(fast) == parts(slow)


def test_shared_records_go_by_the_fast_path():
    """On the shared files no record falls back, and a format with a mapper maps every record: the
    byte-identity above is the fast path's."""
    for path in sorted(SHARED_DATA.glob("*/*.jsonl")) or [shared_file("math/math500.jsonl")]:
        lines = [line for line in path.read_bytes().splitlines() if line.strip()]
        name = detect_format([orjson.loads(line) for line in lines[:32]])
        for line in lines:
            record = orjson.loads(line)
            assert fast_record(record, "f:1", name, "f", None) is not None, (path, line[:200])
            assert name not in MAPPERS or MAPPERS[name](record) is not None, (path, line[:200])


def test_a_worker_imports_neither_polars_duckdb_nor_pandas(tmp_path):
    """An ingest worker's module (what the spawned processes import) converts a planted block with
    neither Polars, DuckDB nor pandas loaded, and its decision columns are curate.stage's."""
    from curate.stage import DETAIL, REASON

    data = planted_file(tmp_path / "planted.jsonl", "chat")
    script = (
        "import sys; from curate import ingest_fast as f; f.init_worker(); "
        f"block = f.LineBlock({str(data)!r}, None, 1, 0, {data.stat().st_size}); "
        "table = f.convert_chunk((block, 'chat', 'planted')); "
        "print(table.num_rows, *table.column_names[-2:], *({'polars', 'duckdb', 'pandas'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    good, other, bad, raw_good = PLANTED["chat"]
    assert out.split() == [str(len(good) + len(other) + len(bad) + len(raw_good)), REASON, DETAIL]


def test_convert_chunk_leaves_the_garbage_collector_as_it_found_it(monkeypatch):
    """The cyclic collector is off while a chunk converts (curate.ingest_fast.convert_chunk) and
    back as it was afterwards, on or off."""
    import gc

    from curate import ingest_fast
    from curate.readers import Chunk

    seen = []

    def mapper(record):
        seen.append(gc.isenabled())
        return ingest_fast.chat_rows(record)

    monkeypatch.setitem(ingest_fast.MAPPERS, "chat", mapper)
    line = json.dumps(chat("q", "<think>t</think>a", source="s")).encode()
    chunk = Chunk("f.jsonl", lines=[(1, line), (2, b"{broken")])
    was = gc.isenabled()
    try:
        for enabled in (True, False):
            (gc.enable if enabled else gc.disable)()
            table = ingest_fast.convert_chunk((chunk, "chat", "f"))
            assert gc.isenabled() is enabled
            assert table.column("_reason").to_pylist() == [None, "malformed"]
    finally:
        (gc.enable if was else gc.disable)()
    assert seen == [False, False]
