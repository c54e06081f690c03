"""Code problems: one-line Python functions (and one stdin program) whose name, argument, constants
and operators a student copies from the prompt; worked examples make two tasks differ in numbers."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

from distill.demo.corpus.task import Task

# Arithmetic forms: words, Python, value; `a` and `b` are the constants of one task.
FORMS = (
    ("plus {a}", "{v} + {a}", lambda v, a, b: v + a),
    ("minus {a}", "{v} - {a}", lambda v, a, b: v - a),
    ("times {a}", "{v} * {a}", lambda v, a, b: v * a),
    ("times {a} plus {b}", "{v} * {a} + {b}", lambda v, a, b: v * a + b),
    ("times {a} minus {b}", "{v} * {a} - {b}", lambda v, a, b: v * a - b),
)
# (words, solution, buggy solution, value); `k` is the task's constant.
STRING_OPS = (
    ("reversed", "s[::-1]", "s", lambda s, k: s[::-1]),
    ("in upper case", "s.upper()", "s.lower()", lambda s, k: s.upper()),
    ("in lower case", "s.lower()", "s.upper()", lambda s, k: s.lower()),
    ("repeated {k1} times", "s * {k1}", "s * {k2}", lambda s, k: s * (k + 1)),
    ("without its first {k} characters", "s[{k}:]", "s[{k1}:]", lambda s, k: s[k:]),
    ("without its last {k} characters", "s[:-{k}]", "s[:-{k1}]", lambda s, k: s[:-k]),
)
STRING_FUNCTIONS = ("g", "fix", "twist", "shape", "remake", "style")
STRING_ARGS = ("s", "word", "text", "w", "name")
LIST_FUNCTIONS = ("h", "total", "pick", "score", "measure", "summary")
LIST_ARGS = ("xs", "items", "nums", "values", "data")
LIST_OPS = (
    ("sum", "sum(xs)", "max(xs)", sum),
    ("largest item", "max(xs)", "min(xs)", max),
    ("smallest item", "min(xs)", "max(xs)", min),
    ("length", "len(xs)", "sum(xs)", len),
)
WORDS_IN = (
    "Hello",
    "abcdef",
    "Tiny",
    "radar",
    "Python",
    "xYzW",
    "kettle",
    "Moon",
    "banana",
    "Quartz",
    "level",
    "OpenAI",
    "tree",
    "Zebra",
    "cloud",
)
LISTS_IN = (
    [3, 1, 2],
    [5],
    [4, 9, 0, 7],
    [2, 2],
    [6, 1],
    [8, 3, 5],
    [1, 2, 3, 4],
    [7, 7, 1],
    [10, 4],
    [0, 6, 2],
)


def _arithmetic(rng: random.Random, var: str) -> tuple[str, str, str, Callable[[int], int]]:
    """(words, code, buggy code, function) of a random arithmetic form over variable `var`."""
    words, code, value = rng.choice(FORMS)
    a, b = rng.randint(2, 9), rng.randint(1, 9)
    return (
        words.format(a=a, b=b),
        code.format(v=var, a=a, b=b),
        code.format(v=var, a=a + 1, b=b),
        lambda v: value(v, a, b),
    )


def _rename(text: str, var: str, old: str = "s") -> str:
    """`text` with the variable `old` (a whole word) renamed to `var`."""
    return re.sub(rf"\b{old}\b", var, text)


def code_block(code: str) -> str:
    return f"```python\n{code}\n```"


def _examples(name: str, calls: list[tuple[Any, Any]]) -> str:
    return " and ".join(f"`{name}({arg!r}) == {result!r}`" for arg, result in calls)


def code_arithmetic(rng: random.Random) -> Task:
    name = "f"
    words, code, bug, function = _arithmetic(rng, "x")
    inputs = rng.sample(range(1, 20), 3)
    return Task(
        "code",
        "arithmetic",
        f"Write `{name}(x)`, which returns x {words}. For example, "
        f"{_examples(name, [(x, function(x)) for x in inputs[:2]])}.",
        None,
        {"kind": "call", "fn_name": name, "cases": [{"args": [x], "expected": function(x)} for x in inputs]},
        f"Return x {words}: {code}.",
        code_block(f"def {name}(x):\n    return {code}"),
        f"Return x {words}: {bug}.",
        code_block(f"def {name}(x):\n    return {bug}"),
        name=name,
    )


def code_string(rng: random.Random) -> Task:
    # The function's and the argument's names vary: with `g(s)` alone, the few operations gave few
    # distinct problems and the eval set took nearly all of them.
    name, var = rng.choice(STRING_FUNCTIONS), rng.choice(STRING_ARGS)
    words, expression, wrong_expression, function = rng.choice(STRING_OPS)
    k = rng.randint(1, 3)  # every input word is longer than k + 1: the buggy slice differs
    words, expression, wrong_expression = (
        _rename(t.format(k=k, k1=k + 1, k2=k + 2), var) for t in (words, expression, wrong_expression)
    )
    inputs = rng.sample(WORDS_IN, 3)
    return Task(
        "code",
        "string",
        f"Write `{name}({var})`, which returns the string {var} {words}. For example, "
        f"{_examples(name, [(x, function(x, k)) for x in inputs[:2]])}.",
        None,
        {
            "kind": "call",
            "fn_name": name,
            "cases": [{"args": [x], "expected": function(x, k)} for x in inputs],
        },
        f"Return {var} {words}: {expression}.",
        code_block(f"def {name}({var}):\n    return {expression}"),
        f"Return {var} {words}: {wrong_expression}.",
        code_block(f"def {name}({var}):\n    return {wrong_expression}"),
        name=name,
    )


def code_stdin(rng: random.Random) -> Task:
    words, code, bug, function = _arithmetic(rng, "n")
    inputs = rng.sample(range(1, 20), 3)
    return Task(
        "code",
        "stdin",
        f"Read n and print n {words}. Example: input {inputs[0]}, output {function(inputs[0])}.",
        None,
        {"kind": "stdin", "cases": [{"input": f"{n}\n", "output": f"{function(n)}\n"} for n in inputs]},
        f"Read n, then print {code}.",
        code_block(f"n = int(input())\nprint({code})"),
        f"Read n, then print {bug}.",
        code_block(f"n = int(input())\nprint({bug})"),
    )


def code_list(rng: random.Random) -> Task:
    name, var = rng.choice(LIST_FUNCTIONS), rng.choice(LIST_ARGS)
    what, expression, wrong_expression, function = rng.choice(LIST_OPS)
    expression, wrong_expression = _rename(expression, var, "xs"), _rename(wrong_expression, var, "xs")
    k = rng.randint(0, 9)
    words, plus = (f"{what} of {var} plus {k}", f" + {k}") if k else (f"{what} of {var}", "")
    lists = rng.sample(LISTS_IN, 3)
    example = _examples(name, [(lists[0], function(lists[0]) + k)])
    asserts = "".join(f"    assert candidate({xs}) == {function(xs) + k}\n" for xs in lists)
    return Task(
        "code",
        "list",
        f'def {name}({var}):\n    """Return the {words}, e.g. {example}."""\n',
        None,
        {"kind": "assert", "entry_point": name, "code": f"def check(candidate):\n{asserts}"},
        f"The {words} is {expression}{plus}.",
        code_block(f"def {name}({var}):\n    return {expression}{plus}"),
        f"The {words} is {wrong_expression}{plus}.",
        code_block(f"def {name}({var}):\n    return {wrong_expression}{plus}"),
        name=name,
    )
