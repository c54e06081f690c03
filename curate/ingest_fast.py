"""The fast ingest path: lean record mappers for the common shapes, exact to the per-record path
(the adapters) by construction, and trace ids hashed in one pass.

A mapper takes one parsed record and returns the adapter's one partial row as a tuple in `FIELDS`
order (the ingest stage appends it straight to its column lists), or None when the record
is not in the plain shape it covers (extra turn keys, a system turn, an own `meta`, `tests`, a
field of another type ...): such a record goes to the per-record path, which gives the same rows
or the malformed row with its field and reason. Formats without a mapper run their adapter here,
and any error sends the record to the per-record path too. tests/curate/test_ingest_columnar.py
checks that both paths write byte-identical workspaces.

Why records and not a columnar JSON reader: measured on this project's 2-core machine, orjson
parses a 2 kB chat line in 1-6 us, Polars' `read_ndjson` with a schema in 17-36 us and DuckDB's
`from_json` in 27 us, and neither says which lines orjson would refuse (DuckDB takes trailing
commas and NaN, and fails the whole batch on a lone surrogate). The time went to the adapters'
field bookkeeping; the think split (curate.think's regex, 5 us on a 2 kB response) is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from hashlib import blake2b
from typing import Any

from curate.formats.chat import REFERENCE_KEYS, ROLES
from curate.formats.problem_set import ANSWER_KEYS, PROBLEM_KEYS, SOLUTION_KEYS

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
    tail = b"\x00\x1f" if response is None else b"\x01" + response.encode("utf-8", "surrogatepass") + b"\x1f"
    return blake2b(framed + tail, digest_size=16).hexdigest(), blake2b(framed, digest_size=8).hexdigest()


def _turn(turn: Any) -> tuple[str, str] | None:
    """(role, content) of a turn with exactly a role and a content, both strings; else None."""
    if type(turn) is not dict or len(turn) != 2:
        return None
    role_key, content_key = ("role", "content") if "role" in turn else ("from", "value")
    role, content = turn.get(role_key), turn.get(content_key)
    if type(role) is not str or type(content) is not str:
        return None
    return ROLES.get(role.lower()), content


def chat_rows(record: dict[str, Any], default_teacher: str | None = None) -> Mapped | None:
    """`Chat.convert` for a user turn then an assistant turn with nothing else in them."""
    key = _first_key(record, ("messages", "conversations"))
    if key is None or "meta" in record or "tests" in record:
        return None
    turns = record[key]
    if type(turns) is not list or len(turns) != 2:
        return None
    user, assistant = _turn(turns[0]), _turn(turns[1])
    if user is None or assistant is None or user[0] != "user" or assistant[0] != "assistant":
        return None
    reference_key, teacher_key = _first_key(record, REFERENCE_KEYS), _first_key(record, TEACHER_KEYS)
    ok, reference = _scalar_text(record.get(reference_key) if reference_key else None)
    teacher = record.get(teacher_key) if teacher_key else None
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
