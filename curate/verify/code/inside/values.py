"""Values crossing from the runner to the supervisor.

Plain data travels as JSON plus one-key tags ({"tuple": [...]}, {"set": [...]}, ...), built only from
objects whose type is *exactly* a builtin type. Anything else (a function, an instance, an int
subclass with a lying __eq__) stays in the runner and travels as {"ref": [n, type name]}; the
supervisor sees it as a Remote, which equals nothing but itself."""

from __future__ import annotations

from .framing import ProtocolError

# Plain data travels as JSON plus one-key tags ({"tuple": [...]}, {"set": [...]}, ...), built only from
# objects whose type is *exactly* a builtin type. Anything else (a function, an instance, an int
# subclass with a lying __eq__) stays in the runner and travels as {"ref": [n, type name]}; the
# supervisor sees it as a Remote, which equals nothing but itself.

PLAIN = (type(None), bool, int, float, str)


def encode(value: object, refs: list, depth: int = 0) -> object:
    kind = type(value)
    if kind in PLAIN:
        return value
    if depth > 100:
        raise ValueError("value nested too deeply to report")
    if kind is list:
        return [encode(item, refs, depth + 1) for item in value]
    if kind is tuple or kind is set or kind is frozenset:
        return {kind.__name__: [encode(item, refs, depth + 1) for item in value]}
    if kind is dict:
        return {"dict": [[encode(k, refs, depth + 1), encode(v, refs, depth + 1)] for k, v in value.items()]}
    if kind is bytes:
        return {"bytes": value.hex()}
    if kind is complex:
        return {"complex": [value.real, value.imag]}
    refs.append(value)
    return {"ref": [len(refs) - 1, kind.__name__]}


def decode(data: object, make_ref, depth: int = 0) -> object:
    """The inverse of encode, building fresh builtin objects; make_ref(n, type_name) builds a Remote."""
    kind = type(data)
    if kind in PLAIN:
        return data
    if depth > 100:
        raise ProtocolError("value nested too deeply")
    if kind is list:
        return [decode(item, make_ref, depth + 1) for item in data]
    if kind is not dict or len(data) != 1:
        raise ProtocolError(f"unexpected value {str(data)[:80]}")
    ((tag, payload),) = data.items()
    try:
        if tag == "ref":
            number, type_name = payload
            if type(number) is not int or type(type_name) is not str:
                raise ProtocolError("bad reference")
            return make_ref(number, type_name)
        if tag == "bytes":
            return bytes.fromhex(payload)
        if tag == "complex":
            real, imag = payload
            return complex(float(real), float(imag))
        if type(payload) is not list:
            raise ProtocolError(f"bad {tag} payload")
        items = [decode(item, make_ref, depth + 1) for item in payload]
        if tag == "tuple":
            return tuple(items)
        if tag == "set":
            return set(items)
        if tag == "frozenset":
            return frozenset(items)
        if tag == "dict":
            return {key: value for key, value in items}
    except (TypeError, ValueError) as error:  # unhashable set items, wrong pair shapes, bad hex
        raise ProtocolError(f"bad {tag} value: {error}") from None
    raise ProtocolError(f"unknown tag {tag!r}")
