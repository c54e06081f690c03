"""The ingest workers' side: a chunk of an input to an Arrow table (`convert_chunk`), by the fast
path (JSON lines parsed by orjson and mapped by lean mappers for the common shapes, exact to the
per-record path, the adapters, by construction; the columns a block's rows derive from their text,
ids and reasoning, computed over the whole block at once) or by the per-record path. It is all a
spawned worker imports: no Polars, DuckDB or pandas (`init_worker`), no other stage.

A mapper takes one parsed record and returns the adapter's one partial row as a tuple in `FIELDS`
order, or None when the record is not in the plain shape it covers (extra turn keys, a system
turn, an own `meta`, `tests`, a field of another type ...): such a record goes to the per-record
path, which gives the same rows or the malformed row with its field and reason. Formats without a
mapper run their adapter per record. tests/curate/test_ingest_columnar.py checks that both paths
write byte-identical workspaces.

Why orjson per line and not a columnar JSON reader: measured in bulk on an 8 MB block of 2 kB
R1-style chat lines (one thread, CPU time per row, load 3-14 on 2 cores): orjson 2.2-4.6 us,
Polars `read_ndjson` with the explicit schema 5.8-8.3 us, DuckDB `read_json` 6.1 us, Polars
`str.json_decode` on a column of lines 3.1 us; and none of them says which lines orjson and the
adapters would refuse or read otherwise (extra keys are dropped by a schema, key order and
duplicate keys are lost, DuckDB takes trailing commas and NaN), so an exact columnar path would
still parse every line with orjson first. Polars' think split (`curate.think.reasoning_expr`,
7.7 us) is slower than the Python rule (3.3 us); `reasoning_column` gives its result at about
half that by plain string search where that is exact.
"""

from __future__ import annotations

import gc
import importlib.abc
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from hashlib import blake2b
from typing import Any

import orjson
import pyarrow as pa

from curate.formats import Malformed, convert
from curate.formats.chat import REFERENCE_KEYS, ROLES
from curate.formats.problem_set import ANSWER_KEYS, PROBLEM_KEYS, SOLUTION_KEYS
from curate.readers import Chunk, parse_line
from curate.schema import TRACE_SCHEMA, content_hash
from curate.think import CLOSE, OPEN, reasoning_of

# curate.stage's decision columns, not imported from there: this module is all an ingest worker
# imports, and curate.stage brings Polars and DuckDB (tests/curate/test_ingest_columnar.py checks
# that the names agree and that a worker imports neither).
REASON, DETAIL = "_reason", "_detail"
INGEST_SCHEMA = pa.schema(
    [f for f in TRACE_SCHEMA if f.name != "row_id"] + [(REASON, pa.string()), (DETAIL, pa.string())]
)

TURN_KEYS = ("messages", "conversations")
TEACHER_KEYS = ("model", "teacher", "generator")
FIELDS = ("problem", "response", "reference", "subset", "teacher", "meta")
"""The order of a mapper's tuple: the adapter's partial row, `meta` still a dict."""
Mapped = tuple[str, "str | None", "str | None", "str | None", "str | None", dict[str, Any]]


def _scalar_text(value: Any) -> tuple[bool, str | None]:
    """(ok, text) as `as_text(value, scalar=True)` gives it; ok is False where it would raise."""
    if value is None or type(value) is str:
        return True, value
    if type(value) in (int, float):
        return True, str(value)
    return False, None


def _first_key(record: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:  # a plain loop: a generator here cost more than the rest of the mapping
        if record.get(key) is not None:
            return key
    return None


def trace_ids(problem: str, response: str | None) -> tuple[str, str]:
    """(trace_id, problem_id) of curate.schema in one pass over the problem's bytes: the same
    blake2b framing as `content_hash` (a streamed hash of the concatenation is the same digest)."""
    framed = b"\x01" + problem.encode("utf-8", "surrogatepass") + b"\x1f"
    trace = blake2b(framed, digest_size=16)
    if response is None:
        trace.update(b"\x00\x1f")
    else:  # fed in parts: no copy of the response's bytes
        trace.update(b"\x01")
        trace.update(response.encode("utf-8", "surrogatepass"))
        trace.update(b"\x1f")
    return trace.hexdigest(), blake2b(framed, digest_size=8).hexdigest()


def _literals(pattern: str) -> tuple[tuple[str, int], ...]:
    """The (marker, length) pairs of an alternation of escaped literals (curate.think's OPEN, CLOSE)."""
    markers = [re.sub(r"\\(.)", r"\1", alt) for alt in re.split(r"(?<!\\)\|", pattern)]
    if any(not m.startswith("<") or "<" in m[1:] for m in markers):  # what `_reasoning` relies on
        raise ValueError(f"markers {markers}: each must hold one `<`, first")
    return tuple((marker.lower(), len(marker)) for marker in markers)


_OPENS, _CLOSES = _literals(OPEN), _literals(CLOSE)
_USUAL_OPEN, _USUAL_CLOSE = _OPENS[0][0], _CLOSES[0][0]  # `<think>`, `</think>`: checked first


# The characters beyond ASCII that re.IGNORECASE takes for a marker's letters (İ and ı for i, the
# Kelvin sign for k; tests/curate/test_ingest_columnar.py checks every code point): in text without
# them, the markers match only ASCII characters.
CASE_TWINS = ("\u0130", "\u0131", "\u212a")


def _reasoning(response: str | None) -> str | None:
    """`curate.think.reasoning_of` by string search: in text without CASE_TWINS the markers'
    case-insensitive matches are exactly the spots where a `<` starts a lowercased marker, and no
    two markers overlap (each holds one `<`, first), so the last closing marker is the last such
    `<` and the opening one the first before it. Other text takes the rule itself."""
    if response is None or (not response.isascii() and any(c in response for c in CASE_TWINS)):
        return reasoning_of(response)
    end, stop = -1, len(response)
    if (at := response.rfind("<")) >= 0 and response.startswith(_USUAL_CLOSE, at):
        end = at  # the usual last `<`: the spelling of the first closing marker as it is written
    while end < 0 and (at := response.rfind("<", 0, stop)) >= 0:
        for marker, size in _CLOSES:
            if response[at : at + size].lower() == marker:
                end = at
                break
        stop = at
    closed, end = end >= 0, end if end >= 0 else len(response)
    start = 0
    if (at := response.find("<", 0, end)) >= 0 and response.startswith(_USUAL_OPEN, at, end):
        return response[at + len(_USUAL_OPEN) : end].strip()
    while (at := response.find("<", start, end)) >= 0:
        for marker, size in _OPENS:
            if at + size <= end and response[at : at + size].lower() == marker:
                return response[at + size : end].strip()
        start = at + 1
    return response[:end].strip() if closed else None


def reasoning_column(responses: Iterable[str | None]) -> list[str | None]:
    """The reasoning (curate.think's rule) of every response of a block."""
    return [_reasoning(response) for response in responses]


def _turn(turn: Any) -> tuple[str, str] | None:
    """(role, content) of a turn with exactly a role and a content, both strings; else None."""
    if type(turn) is not dict or len(turn) != 2:
        return None
    role_key, content_key = ("role", "content") if "role" in turn else ("from", "value")
    role, content = turn.get(role_key), turn.get(content_key)
    if type(role) is not str or type(content) is not str:
        return None
    return ROLES.get(role.lower()), content


ChatPlan = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]
_CHAT_PLANS: dict[tuple[str, ...], ChatPlan | None] = {}
_PLANS_KEPT = 1024  # distinct key sequences remembered (a file has a handful; a hostile one many)


def _chat_plan(keys: tuple[str, ...]) -> ChatPlan | None:
    """For a record with these keys, in order: the transcript, reference and teacher keys it holds,
    each in the adapter's order of preference; None for a shape the mapper leaves alone."""
    if "meta" in keys or "tests" in keys:
        return None
    plan = tuple(tuple(k for k in group if k in keys) for group in (TURN_KEYS, REFERENCE_KEYS, TEACHER_KEYS))
    return plan if plan[0] else None


def _first(record: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:  # of the keys the record holds, the first whose value is not null
        if record[key] is not None:
            return key
    return None


def chat_rows(record: dict[str, Any], default_teacher: str | None = None) -> Mapped | None:
    """`Chat.convert` for a user turn then an assistant turn with nothing else in them. Which keys
    to read is worked out once per key sequence (`_chat_plan`), not per record."""
    keys = tuple(record)
    plan = _CHAT_PLANS.get(keys, _CHAT_PLANS)
    if plan is _CHAT_PLANS:
        plan = _chat_plan(keys)
        if len(_CHAT_PLANS) < _PLANS_KEPT:
            _CHAT_PLANS[keys] = plan
    if plan is None:
        return None
    key = _first(record, plan[0])
    if key is None:
        return None
    turns = record[key]
    if type(turns) is not list or len(turns) != 2:
        return None
    user, assistant = turns
    if (  # the usual spelling, as _turn reads it: {"role": "user"/"assistant", "content": ...}
        type(user) is dict
        and type(assistant) is dict
        and len(user) == len(assistant) == 2
        and user.get("role") == "user"
        and assistant.get("role") == "assistant"
    ):
        question, answer = user.get("content"), assistant.get("content")
        if type(question) is not str or type(answer) is not str:
            return None
    else:
        user, assistant = _turn(user), _turn(assistant)
        if user is None or assistant is None or user[0] != "user" or assistant[0] != "assistant":
            return None
        question, answer = user[1], assistant[1]
    reference_key, teacher_key = _first(record, plan[1]), _first(record, plan[2])
    reference = record[reference_key] if reference_key else None
    if reference is not None and type(reference) is not str:
        ok, reference = _scalar_text(reference)
        if not ok:
            return None
    teacher = record[teacher_key] if teacher_key else None
    if teacher is not None and type(teacher) is not str:
        return None
    source = record.get("source")
    used = (key, reference_key, teacher_key)
    return (
        question,
        answer,
        reference,
        source if type(source) is str and source else None,
        teacher if default_teacher is None else teacher or default_teacher,
        {k: v for k, v in record.items() if k not in used},
    )


def openthoughts_rows(record: dict[str, Any]) -> Mapped | None:
    """`OpenThoughts.convert`: a chat whose teacher, when the record names none, is DeepSeek-R1."""
    return chat_rows(record, default_teacher="DeepSeek-R1")


def problem_set_rows(record: dict[str, Any]) -> Mapped | None:
    """`ProblemSet.convert` for string problem and solution, a scalar answer and no tests."""
    if "meta" in record or "tests" in record:
        return None
    keys = (
        _first_key(record, PROBLEM_KEYS),
        _first_key(record, SOLUTION_KEYS),
        _first_key(record, ANSWER_KEYS),
    )
    problem, solution = (record.get(keys[0]) if keys[0] else None), (record.get(keys[1]) if keys[1] else None)
    ok, answer = _scalar_text(record.get(keys[2]) if keys[2] else None)
    if not ok or type(problem) is not str or (solution is not None and type(solution) is not str):
        return None
    if solution is None and answer and "\n#### " in f"\n{answer}":  # GSM8K: "... #### 72"
        solution, answer = answer, answer.rsplit("####", 1)[1].strip().replace(",", "")
    subset = next((v for k in ("source", "dataset") if type(v := record.get(k)) is str and v), None)
    return problem, solution, answer, subset, None, {k: v for k, v in record.items() if k not in keys}


Mapper = Callable[[dict[str, Any]], "Mapped | None"]
MAPPERS: dict[str, Mapper] = {
    "chat": chat_rows,
    "openthoughts": openthoughts_rows,
    "problem_set": problem_set_rows,
}


def _meta_json(meta: dict[str, Any]) -> str:
    try:
        return orjson.dumps(meta, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError as error:  # nested deeper than orjson writes (254 levels): keep it as text
        return orjson.dumps({"unencodable": str(error), "repr": repr(meta)}).decode()


def _malformed(origin: str, raw_text: str, message: str, source: str | None = None) -> dict[str, Any]:
    return {
        "id": content_hash(raw_text),
        "source": source,
        "origin": origin,
        "meta": _meta_json({"raw": raw_text}),
        REASON: "malformed",
        DETAIL: f"{origin}: {message}",
    }


def trace_rows(
    rows: list[dict[str, Any]],
    origin: str,
    source: str,
    split: str | None,
) -> list[dict]:
    """Trace rows from the partial rows of `curate.formats.convert` (each with a problem): ids,
    source, origin and meta filled in."""
    out = []
    for row in rows:
        problem, response = row["problem"], row.get("response")
        ids = trace_ids(problem, response)
        reasoning = row.get("reasoning")
        out.append(
            {
                "id": ids[0],
                "problem_id": ids[1],
                "source": source,
                "origin": origin,
                "subset": row.get("subset"),
                "dataset_split": split,
                "problem": problem,
                "reasoning": reasoning.strip() if isinstance(reasoning, str) else reasoning_of(response),
                "response": response,
                "reference": row.get("reference"),
                "tests": row.get("tests"),
                "teacher": row.get("teacher"),
                "meta": _meta_json(row.get("meta") or {}),
                REASON: None,
                DETAIL: None,
            }
        )
    return out


def convert_record(
    record: Any,
    origin: str,
    raw_text: str | None,
    adapter_name: str,
    source: str,
    mapping: dict[str, str] | None = None,
    split: str | None = None,
) -> list[dict]:
    """Trace rows for one raw record (a malformed row when it cannot be converted): the per-record path."""
    if not isinstance(record, dict):
        message = f"expected an object, got {type(record).__name__}"
        return [_malformed(origin, raw_text or repr(record), message, source)]
    try:
        return trace_rows(convert(record, adapter_name, mapping), origin, source, split)
    except Malformed as error:
        return [_malformed(origin, raw_text or _meta_json(record), str(error), source)]
    except Exception as error:  # a record must never stop the run; the reason says what broke
        message = f"{type(error).__name__}: {error}"
        return [_malformed(origin, raw_text or _meta_json(record), message, source)]


def fast_record(
    record: dict, origin: str, adapter_name: str, source: str, split: str | None
) -> list[dict] | None:
    """Trace rows for one parsed record by the fast path (curate.ingest_fast), or None to leave it
    to the per-record path (a shape the mapper does not cover, or any error)."""
    try:
        mapper = MAPPERS.get(adapter_name)
        if mapper is None:
            return trace_rows(convert(record, adapter_name), origin, source, split)
        mapped = mapper(record)
        return (
            None
            if mapped is None
            else trace_rows([dict(zip(FIELDS, mapped, strict=True))], origin, source, split)
        )
    except Exception:  # the per-record path gives this record its malformed row and reason
        return None


def _line_rows(
    raw: bytes,
    origin: str,
    adapter_name: str,
    source: str,
    mapping: dict,
    split: str | None,
    fast: bool,
) -> list[dict]:
    """The rows of one JSON line that the columnar loop of `convert_chunk` did not take."""
    record, error, text = parse_line(raw)
    if error:
        return [_malformed(origin, text, error, source)]
    quick = fast_record(record, origin, adapter_name, source, split) if fast else None
    if quick is not None:
        return quick
    raw_text = text if len(text) < 4096 else None
    return convert_record(record, origin, raw_text, adapter_name, source, mapping, split)


@dataclass
class LineBlock:
    """Whole lines of an uncompressed JSON-lines file, as a byte range cut at a newline: the
    parent only finds the cuts, the worker reads the range and splits the lines (`chunk`), so no
    per-line Python runs in the parent and no text crosses a pipe (on a loaded machine a pipe
    hands 64 kB at a time between two processes, each waiting for the CPU)."""

    path: str
    split: str | None
    first_line: int
    offset: int
    size: int

    def chunk(self) -> Chunk:
        """The Chunk `curate.readers.iter_chunks` gives for these lines: 1-based numbers counting
        blank lines, which are no rows, and line ends stripped."""
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            data = handle.read(self.size)
        raws = data.split(b"\n")
        if data.endswith(b"\n"):
            raws.pop()  # what follows the last line end is no line
        if b"\r" in data:
            raws = [raw.rstrip(b"\r") for raw in raws]
        numbered = zip(range(self.first_line, self.first_line + len(raws)), raws, strict=True)
        if raws and min(raws)[:1] > b" ":  # no line starts with a byte <= space, so none is blank
            return Chunk(self.path, lines=list(numbered), split=self.split)
        return Chunk(self.path, lines=[(n, raw) for n, raw in numbered if raw.strip()], split=self.split)


def _mapped_table(mapped: list[tuple], origins: list[str], source: str, split: str | None) -> pa.Table:
    """The trace rows of mapped records (tuples in FIELDS order), column by column over the block:
    ids, reasoning and meta as the per-record path's `trace_rows` makes them."""
    count = len(mapped)
    problem, response, reference, subset, teacher, meta = (
        zip(*mapped, strict=True) if mapped else ((),) * len(FIELDS)
    )
    trace, problem_ids = zip(*map(trace_ids, problem, response), strict=True) if mapped else ((), ())
    nothing = pa.nulls(count, pa.string())
    columns = {
        "id": trace,
        "problem_id": problem_ids,
        "source": pa.array([source] * count, pa.string()),
        "origin": origins,
        "subset": subset,
        "dataset_split": pa.array([split] * count, pa.string()),
        "problem": problem,
        "reasoning": reasoning_column(response),
        "response": response,
        "reference": reference,
        "tests": nothing,
        "domain": nothing,
        "teacher": teacher,
        "meta": [_meta_json(m) for m in meta],
        REASON: nothing,
        DETAIL: nothing,
    }
    return pa.Table.from_pydict(columns, schema=INGEST_SCHEMA)


def _interleave(mapped: pa.Table, others: list[tuple[int, list[dict]]]) -> pa.Table:
    """The mapped rows with the rows of the other lines put back in file order; `others` holds
    (number of mapped rows before it, its rows) per line, in order."""
    other = pa.Table.from_pylist([row for _, line_rows in others for row in line_rows], schema=INGEST_SCHEMA)
    if mapped.num_rows == 0:  # the per-record path, or a block with no mapped line
        return other
    order, done, at = [], 0, mapped.num_rows
    for before, line_rows in others:
        order += range(done, before)
        order += range(at, at + len(line_rows))
        done, at = before, at + len(line_rows)
    order += range(done, mapped.num_rows)
    return pa.concat_tables([mapped, other]).take(pa.array(order, pa.int64()))


def convert_chunk(job: tuple) -> pa.Table:
    """Worker entry point: one chunk of an input to an Arrow table (row_id is added by the parent).
    `job` is (chunk or LineBlock, adapter name, source) with an optional column mapping and `fast` flag last;
    the fast path takes JSON lines without a mapping, record by record falling back.

    A line the format's mapper takes becomes a tuple, and the block's tuples become the table
    column by column (`_mapped_table`); any other line gets its rows from `_line_rows`, and they
    are put back in the file's order.

    Python's cyclic garbage collector is off while a chunk converts: the rows are tuples, dicts
    and lists without cycles, and each thousand of them made it walk every young container (6% of
    a worker's instructions under valgrind); it is on again, as it was, afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _convert(job)
    finally:
        if enabled:
            gc.enable()


def _convert(job: tuple) -> pa.Table:
    chunk, adapter_name, source, *rest = job
    if isinstance(chunk, LineBlock):
        chunk = chunk.chunk()
    mapping = rest[0] if rest else {}
    fast = (rest[1] if len(rest) > 1 else True) and not mapping
    mapper = MAPPERS.get(adapter_name) if fast else None
    split, loads = chunk.split, orjson.loads
    mapped, numbers, others = [], [], []
    for line, raw in chunk.lines:
        row = None
        if mapper is not None:
            try:
                record = loads(raw)  # refuses what parse_line would: invalid UTF-8, broken JSON
                row = mapper(record) if type(record) is dict else None
            except Exception:  # the per-record path says what is wrong with the line
                row = None
        if row is None:
            origin = chunk.line_origin(line)
            others.append((len(mapped), _line_rows(raw, origin, adapter_name, source, mapping, split, fast)))
        else:
            mapped.append(row)
            numbers.append(line)
    for number, record in chunk.records:
        origin = chunk.record_origin(number)
        others.append(
            (len(mapped), convert_record(record, origin, None, adapter_name, source, mapping, split))
        )
    table = _mapped_table(mapped, [chunk.line_origin(n) for n in numbers], source, split)
    return _interleave(table, others) if others else table


def convert_chunk_spooled(task: tuple[str, tuple]) -> str:
    """`convert_chunk` for a worker process: (spool file, job) -> the spool file, holding the
    table as Arrow IPC. A file, not the result pipe: a pickled table took 10x the time to send,
    and IPC bytes through the pipe stall on a loaded machine (see LineBlock)."""
    path, job = task
    table = convert_chunk(job)
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return path


class _NoPandas(importlib.abc.MetaPathFinder):
    """Refuses to import pandas: pyarrow then takes it for absent."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "pandas":
            raise ImportError("an ingest worker does not import pandas")


def init_worker() -> None:
    """Set up an ingest worker process: pandas cannot be imported, so pyarrow's first conversion of
    a Python list does not import it (0.4 s of CPU per worker; a worker never needs pandas)."""
    sys.meta_path.insert(0, _NoPandas())
