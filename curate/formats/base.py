"""What every input-format adapter shares: the Adapter interface and careful field access.

An adapter turns one raw record (a dict) into one or more partial trace rows: dicts with some of
problem, response, reasoning, reference, tests, teacher, subset and meta. Ingest fills in the ids
and `source` (the input's name). `subset` is the record's own source tag (`olympiads`, `taco`): it
stays in `meta` too, so adapters read it with `Fields.peek`. Every field the adapter does not map
must end up in `meta`; `Fields.unused()` makes that the default.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar


class Malformed(Exception):
    """A record that cannot be turned into a trace; ingest rejects it with reason `malformed`."""

    def __init__(self, field: str | None, message: str):
        super().__init__(f"field {field!r}: {message}" if field else message)
        self.field = field


class Fields:
    """Typed, tracked access to a record's fields: what is never read goes to `meta`."""

    def __init__(self, record: dict[str, Any]):
        self.record = record
        self.used: set[str] = set()

    def has(self, *keys: str) -> bool:
        return all(key in self.record for key in keys)

    def first_key(self, *keys: str) -> str | None:
        return next((key for key in keys if self.record.get(key) is not None), None)

    def get(self, key: str) -> Any:
        self.used.add(key)
        return self.record.get(key)

    def peek(self, *keys: str) -> str | None:
        """The first of these fields that is a non-empty string, left in `meta` (a subset tag)."""
        return next((v for k in keys if isinstance(v := self.record.get(k), str) and v), None)

    def text(self, key: str, *, required: bool = False, scalar: bool = False) -> str | None:
        """A string field. `scalar` also accepts numbers (answers such as AIME's `204` stored as int)."""
        value = self.get(key)
        return as_text(value, key, required=required, scalar=scalar)

    def any_text(self, *keys: str, required: bool = False, scalar: bool = False) -> str | None:
        key = self.first_key(*keys)
        if key is None:
            if required:
                raise Malformed(keys[0], f"missing (expected one of {', '.join(keys)})")
            return None
        return self.text(key, required=required, scalar=scalar)

    def text_list(self, key: str) -> list[str | None]:
        value = self.get(key)
        if not isinstance(value, list):
            raise Malformed(key, f"expected a list, got {type(value).__name__}")
        return [as_text(item, f"{key}[{i}]") for i, item in enumerate(value)]

    def tests(self) -> str | None:
        """A `tests` field: a spec (DESIGN section 4) or its JSON text, kept as given, or a published
        layout (stdin case lists, APPS inputs/outputs, ...) converted to one. Text that is neither
        is kept as given, for verify to report as an invalid reference."""
        from curate.formats.code_tests import spec_from_published
        from curate.verify.code.specs import SpecError

        value = self.get("tests")
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        try:
            parsed = json.loads(value) if isinstance(value, str) else value
        except ValueError:
            return value
        if isinstance(parsed, dict) and "kind" in parsed:
            return value if isinstance(value, str) else tests_json(parsed)
        if not isinstance(parsed, dict | list):
            raise Malformed("tests", f"expected a test spec object or JSON text, got {type(parsed).__name__}")
        try:
            return tests_json(spec_from_published(parsed))
        except SpecError:
            return value if isinstance(value, str) else json.dumps(parsed, ensure_ascii=False)

    def unused(self) -> dict[str, Any]:
        """Every field not read; a record's own `meta` mapping (a trace row written by `generate` or
        by an earlier export) is merged in rather than nested, so rows round-trip."""
        rest = {key: value for key, value in self.record.items() if key not in self.used}
        own = rest.get("meta")
        if isinstance(own, dict):
            del rest["meta"]
            return {**own, **rest}
        return rest


def as_text(value: Any, field: str, *, required: bool = False, scalar: bool = False) -> str | None:
    if value is None:
        if required:
            raise Malformed(field, "missing")
        return None
    if isinstance(value, str):
        return value
    if scalar and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise Malformed(field, f"expected a string, got {type(value).__name__}")


def fenced(code: str, language: str = "python") -> str:
    """A code solution as a teacher would write it: one fenced block."""
    return f"```{language}\n{code.rstrip()}\n```"


def tests_json(spec: dict[str, Any]) -> str:
    return json.dumps(spec, ensure_ascii=False)


def remap(record: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    """The record with columns renamed before detection: `{"problem": "Question"}` puts the
    `Question` field under `problem`; a dotted name (`reward_model.ground_truth`) reaches inside
    an object. Fields a mapping does not name are left as they are."""
    if not mapping:
        return record
    out = dict(record)
    for target, field in mapping.items():
        head, _, rest = field.partition(".")
        if head not in out:
            continue
        value = out.pop(head) if not rest else out[head]
        for part in rest.split(".") if rest else ():
            value = value.get(part) if isinstance(value, dict) else None
        out[target] = value
    return out


class Adapter:
    """One input format. `detect` looks at a record's shape; `convert` maps it to trace rows.

    `fields` are the field names that mark the format; an unknown file's error lists the formats
    whose fields it shares most."""

    name: ClassVar[str]
    description: ClassVar[str]
    fields: ClassVar[tuple[str, ...]] = ()

    def detect(self, record: dict[str, Any]) -> bool:
        raise NotImplementedError

    def convert(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        raise NotImplementedError
