"""The part of pytest that dataset tests use (KodCode writes `from solution import f` and plain
`test_*` functions, sometimes `pytest.raises`, `approx`, `mark.parametrize` or a fixture of its own),
for `pytest` test specs. Trusted code: it runs in the supervisor, installed as `pytest` while a
test runs; pytest itself is neither needed nor imported.

collect() turns a test module's namespace into the list of calls to make: every top-level `test_*`
function and the `test_*` methods of `Test*` classes, in source order, one call per parameter set,
with the fixtures the module defines. pytest's own fixtures (tmp_path, capsys, ...) are refused.
"""

from __future__ import annotations

import math
import re
import types


class Failed(AssertionError):
    """pytest.fail(), or a `raises` block that did not raise."""


class Skipped(Exception):
    """pytest.skip(): the test neither passes nor fails."""


class Unsupported(Exception):
    """The test needs something of pytest this module does not provide (one of its fixtures)."""


def fail(reason: str = "", pytrace: bool = True) -> None:
    raise Failed(reason or "failed")


def skip(reason: str = "", **_: object) -> None:
    raise Skipped(reason)


class ExceptionInfo:
    type: type | None = None
    value: BaseException | None = None


class _Raises:
    def __init__(self, expected: type | tuple, match: str | None) -> None:
        self.expected, self.match, self.info = expected, match, ExceptionInfo()

    def __enter__(self) -> ExceptionInfo:
        return self.info

    def __exit__(self, kind: type | None, value: BaseException | None, _tb: object) -> bool:
        if kind is None:
            raise Failed(f"DID NOT RAISE {self.expected}")
        if not issubclass(kind, self.expected):
            return False
        if self.match is not None and not re.search(self.match, str(value)):
            raise Failed(f"the raised {kind.__name__}({value}) does not match {self.match!r}")
        self.info.type, self.info.value = kind, value
        return True


def raises(expected: type | tuple, *args: object, match: str | None = None, **kwargs: object):
    """`with raises(E):` or `raises(E, function, *args)`."""
    context = _Raises(expected, match)
    if not args:
        return context
    with context:
        args[0](*args[1:], **kwargs)  # type: ignore[operator]
    return context.info


class _Approx:
    def __init__(self, expected: object, rel: float | None, abs_: float | None) -> None:
        self.expected, self.rel, self.abs = (
            expected,
            1e-6 if rel is None else rel,
            1e-12 if abs_ is None else abs_,
        )

    def _close(self, got: object, expected: object) -> bool:
        if type(expected) in (list, tuple):
            return (
                type(got) in (list, tuple)
                and len(got) == len(expected)
                and all(self._close(a, b) for a, b in zip(got, expected, strict=True))
            )
        if type(expected) is dict:
            return (
                type(got) is dict
                and got.keys() == expected.keys()
                and all(self._close(got[key], expected[key]) for key in expected)
            )
        if type(expected) in (int, float) and type(got) in (int, float):
            return math.isclose(got, expected, rel_tol=self.rel, abs_tol=self.abs) or got == expected
        return got == expected

    def __eq__(self, other: object) -> bool:
        return self._close(other, self.expected)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"approx({self.expected!r})"


def approx(expected: object, rel: float | None = None, abs: float | None = None, **_: object) -> _Approx:  # noqa: A002
    return _Approx(expected, rel, abs)


class _Param:
    def __init__(self, values: tuple, marks: object) -> None:
        self.values, self.marks = values, marks


def param(*values: object, id: str | None = None, marks: object = ()) -> _Param:  # noqa: A002
    return _Param(values, marks)


class _Mark:
    """`mark.<name>(...)` as a decorator: records (name, args, kwargs) on the function."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, *args: object, **kwargs: object):
        if len(args) == 1 and not kwargs and callable(args[0]) and self.name != "parametrize":
            return self._attach(args[0], ())
        return lambda function: self._attach(function, (args, kwargs))

    def _attach(self, function: object, arguments: tuple) -> object:
        target = function.__func__ if isinstance(function, staticmethod | classmethod) else function
        marks = getattr(target, "_marks", [])
        target._marks = [(self.name, arguments), *marks]  # type: ignore[attr-defined]
        return function


class _Marks:
    def __getattr__(self, name: str) -> _Mark:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Mark(name)


mark = _Marks()


def fixture(function: object = None, **_: object):
    """`@fixture` or `@fixture(...)`: the function provides the argument of its name."""

    def register(target):
        target._is_fixture = True
        return target

    return register(function) if callable(function) else register


def _parameter_sets(function: types.FunctionType) -> list[dict]:
    """One dict of arguments per call, from its `parametrize` marks (stacked marks multiply)."""
    sets: list[dict] = [{}]
    for name, arguments in getattr(function, "_marks", ()):
        if name == "skip":
            return []
        if name != "parametrize" or not arguments:
            continue
        args, kwargs = arguments
        names = args[0] if args else kwargs["argnames"]
        values = args[1] if len(args) > 1 else kwargs["argvalues"]
        names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
        rows = []
        for value in values:
            if isinstance(value, _Param):
                value = value.values if len(names) > 1 else value.values[0]
            rows.append(dict(zip(names, value, strict=True)) if len(names) > 1 else {names[0]: value})
        sets = [{**old, **row} for old in sets for row in rows]
    return sets


def _bind(function, given: dict, fixtures: dict, finalizers: list, skip_first: bool) -> dict:
    """The arguments of one call: parameters first, then the module's fixtures (called now)."""
    import inspect  # here, not at the top: the zygote, forked before any test runs, does without it

    names = list(inspect.signature(function).parameters)[1 if skip_first else 0 :]
    arguments = {}
    for name in names:
        if name in given:
            arguments[name] = given[name]
        elif name in fixtures:
            provider = fixtures[name]
            value = provider(**_bind(provider, {}, fixtures, finalizers, False))
            if inspect.isgenerator(value):
                finalizers.append(value)
                value = next(value)
            arguments[name] = value
        else:
            raise Unsupported(f"the test needs the fixture {name!r}, which the harness does not provide")
    return arguments


def collect(namespace: dict, filename: str) -> list[tuple[str, object]]:
    """(test id, call with no arguments) for every test the module defines, in source order."""

    def defined_here(value: object) -> bool:
        code = getattr(value, "__code__", None)
        return isinstance(value, types.FunctionType) and code is not None and code.co_filename == filename

    fixtures = {
        name: value
        for name, value in namespace.items()
        if defined_here(value) and getattr(value, "_is_fixture", 0)
    }
    found: list[tuple[int, str, object, object]] = []  # (line, id, function, class)
    for name, value in namespace.items():
        if name.startswith("test") and defined_here(value) and not getattr(value, "_is_fixture", False):
            found.append((value.__code__.co_firstlineno, name, value, None))
        elif name.startswith("Test") and isinstance(value, type):
            for attribute, method in vars(value).items():
                if attribute.startswith("test") and defined_here(method):
                    found.append((method.__code__.co_firstlineno, f"{name}.{attribute}", method, value))
    calls = []
    for _, test_id, function, cls in sorted(found, key=lambda item: item[0]):
        sets = _parameter_sets(function)
        for number, given in enumerate(sets):
            label = test_id if len(sets) == 1 else f"{test_id}[{number}]"
            calls.append((label, _call(function, cls, given, fixtures)))
    return calls


def _call(function, cls, given: dict, fixtures: dict):
    def run() -> None:
        finalizers: list = []
        try:
            if cls is None:
                function(**_bind(function, given, fixtures, finalizers, False))
                return
            instance = cls()
            if hasattr(instance, "setup_method"):
                instance.setup_method(function)
            function(instance, **_bind(function, given, fixtures, finalizers, True))
            if hasattr(instance, "teardown_method"):
                instance.teardown_method(function)
        finally:
            for generator in finalizers:
                next(generator, None)

    return run
