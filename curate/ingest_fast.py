"""The fast ingest path: JSON lines parsed by orjson and mapped by lean mappers for the common
shapes, exact to the per-record path (the adapters) by construction; the columns a block's rows
derive from their text (ids, reasoning) computed over the whole block at once.

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

import re
from collections.abc import Callable, Iterable
from hashlib import blake2b
from typing import Any

from curate.formats.chat import REFERENCE_KEYS, ROLES
from curate.formats.problem_set import ANSWER_KEYS, PROBLEM_KEYS, SOLUTION_KEYS
from curate.think import CLOSE, OPEN, reasoning_of

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
    while end < 0 and (at := response.rfind("<", 0, stop)) >= 0:
        for marker, size in _CLOSES:
            if response[at : at + size].lower() == marker:
                end = at
                break
        stop = at
    closed, end = end >= 0, end if end >= 0 else len(response)
    start = 0
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
    user, assistant = _turn(turns[0]), _turn(turns[1])
    if user is None or assistant is None or user[0] != "user" or assistant[0] != "assistant":
        return None
    reference_key, teacher_key = _first(record, plan[1]), _first(record, plan[2])
    ok, reference = _scalar_text(record[reference_key] if reference_key else None)
    teacher = record[teacher_key] if teacher_key else None
    if not ok or (teacher is not None and type(teacher) is not str):
        return None
    source = record.get("source")
    used = (key, reference_key, teacher_key)
    return (
        user[1],
        assistant[1],
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
