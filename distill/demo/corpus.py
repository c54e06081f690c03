"""The built-in synthetic teacher corpus of `distillery demo`: R1-style traces for small math,
code and science problems, with planted defects and the truth about each row.

Everything is generated from a seed, so the same config always writes the same bytes:

    traces.jsonl        chat rows (user prompt, assistant `<think>` trace) with reference/tests,
                        domain and a unique `key`; `distillery curate` reads it as is
    truth.jsonl         one line per trace row: key, domain, family, defect (null when clean),
                        variant, and for duplicates the key of the row they copy (`of`)
    eval/<domain>.jsonl held-out problems per domain for `distillery eval --bench`; they are also
                        the benchmark the decontaminate stage should check against

Planted defects (each an extra row; clean rows are never modified):

    wrong_answer      a wrong final answer, a buggy function, a wrong option   -> verify
    exact_duplicate   a byte-identical copy of a clean row                     -> exact_dedup
    near_duplicate    a clean row's trace under the same problem with a lead-in
                      ("Warm-up: ...") as a second source would write it       -> near_dedup
    contaminated      an eval problem with a correct trace                     -> decontaminate
    truncated         the trace stops inside <think>, or after it with no
                      final answer / inside the code block                     -> verify, or quality
                      (a cut science answer whose <think> names the option passes verify; quality
                      with `require_final_answer: true` drops it)
    malicious_code    code that games the tests: sys.exit(0) before the
                      asserts, os._exit(0) in the function, an object equal to
                      everything, a (bounded, 2**5 processes) fork bomb        -> verify

The problems are small on purpose, and so are the traces: one-digit arithmetic in words with a
one-line `<think>` ("We add: 6 + 4 = 10."), one-line Python functions whose name and argument a
student copies from the prompt along with the constants and operators, element symbols, and science questions with a number for an answer (unit conversions,
distance from speed and time). What a tiny student has to learn is the answer format and
a small table of arithmetic facts and code patterns, which a two-layer model can start to do in
a few hundred CPU steps.

Problems are kept apart so that the curation stages are judged on the planted defects only. Each
is compared as the stages see it (its R1 prompt, normalised by curate.text): no two are equal, no
two look like near-duplicates (token 5-gram Jaccard >= 0.6 or 90% containment, with no number
telling them apart: near_dedup's rule with a margin), and no training problem shares a quarter of
its word 8-grams with an eval problem (decontaminate's rule, which needs half). Code problems
show worked examples, so two tasks differ in their numbers and not only in one word.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sympy as sp

from distill.generate.prompts import PromptItem

DOMAINS = ("math", "code", "science")
DEFECTS = ("wrong_answer", "exact_duplicate", "near_duplicate", "contaminated", "truncated", "malicious_code")
# The stages (DESIGN names) expected to drop each defect.
CATCHERS: dict[str, tuple[str, ...]] = {
    "wrong_answer": ("verify",),
    "exact_duplicate": ("exact_dedup",),
    "near_duplicate": ("near_dedup",),
    "contaminated": ("decontaminate",),
    "truncated": ("verify", "quality"),
    "malicious_code": ("verify",),
}
# Which domains get each defect (contamination needs an eval set; malicious code needs code).
DEFECT_DOMAINS = {
    "wrong_answer": DOMAINS,
    "exact_duplicate": DOMAINS,
    "near_duplicate": DOMAINS,
    "contaminated": ("math", "code"),
    "truncated": DOMAINS,
    "malicious_code": ("code",),
}
TEACHER = "demo-teacher"


@dataclass(frozen=True)
class CorpusConfig:
    """Sizes of the corpus. `defect_rate` is the number of planted rows of each defect type as a
    share of a domain's clean rows (at least one each)."""

    seed: int = 0
    math: int = 300
    code: int = 240
    science: int = 60
    eval_math: int = 60
    eval_code: int = 60
    eval_science: int = 20
    defect_rate: float = 0.05

    def clean(self, domain: str) -> int:
        return getattr(self, domain)

    def held_out(self, domain: str) -> int:
        return getattr(self, f"eval_{domain}")

    def planted(self, defect: str, domain: str) -> int:
        if domain not in DEFECT_DOMAINS[defect] or self.clean(domain) == 0:
            return 0
        return max(1, round(self.defect_rate * self.clean(domain)))


@dataclass
class Task:
    """One problem and its teacher trace, with what a defect needs to rewrite it."""

    domain: str
    family: str
    problem: str
    reference: str | None
    tests: dict[str, Any] | None
    think: str
    final: str
    wrong_think: str
    wrong_final: str
    name: str | None = None  # code: the function's name

    @property
    def tests_json(self) -> str | None:
        return json.dumps(self.tests) if self.tests is not None else None

    def item(self) -> PromptItem:
        return PromptItem(self.problem, self.reference, self.tests_json, self.domain)


def trace(think: str, final: str) -> str:
    return f"<think>\n{think}\n</think>\n\n{final}"


def boxed_final(answer: str) -> str:
    return f"The answer is $\\boxed{{{answer}}}$."


# -- math -----------------------------------------------------------------------------------------

UNKNOWNS = ("x", "y", "z", "n", "m", "k", "t")
NAMES = (
    "Ana",
    "Ben",
    "Cleo",
    "Dev",
    "Emma",
    "Finn",
    "Gia",
    "Hugo",
    "Ines",
    "Jack",
    "Kira",
    "Liam",
    "Maya",
    "Noah",
    "Omar",
    "Pia",
    "Quinn",
    "Rosa",
    "Sami",
    "Tara",
    "Uma",
    "Vik",
    "Wes",
    "Xena",
    "Yara",
    "Zoe",
    "Aldo",
    "Bea",
    "Cyril",
    "Dina",
    "Elio",
    "Fay",
)
ITEMS = (
    "apples",
    "pencils",
    "marbles",
    "stickers",
    "books",
    "cookies",
    "shells",
    "stamps",
    "coins",
    "cards",
    "buttons",
    "beads",
    "eggs",
    "plums",
    "kites",
    "socks",
    "cups",
    "bricks",
    "ribbons",
    "acorns",
)


def _integer(expr: sp.Expr) -> str:
    """The LaTeX of an exact sympy value (integers, rationals): what a reference answer holds."""
    return sp.latex(expr)


def math_add(rng: random.Random) -> Task:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    a, b = rng.randint(1, 6), rng.randint(1, 6)
    answer = _integer(sp.Integer(a) + b)
    wrong = _integer(sp.Integer(a) + b + rng.choice((-1, 1)))
    return Task(
        "math",
        "add",
        f"{name} has {a} {item}. {name} gets {b} more {item}. How many {item} does {name} have now?",
        answer,
        None,
        f"We add: {a} + {b} = {answer}.",
        boxed_final(answer),
        f"We add: {a} + {b} = {wrong}.",
        boxed_final(wrong),
    )


def math_sub(rng: random.Random) -> Task:
    name, other = rng.sample(NAMES, 2)
    item = rng.choice(ITEMS)
    a = rng.randint(4, 9)
    b = rng.randint(1, 3)
    answer = _integer(sp.Integer(a) - b)
    wrong = _integer(sp.Integer(a) + b)
    return Task(
        "math",
        "sub",
        f"{name} has {a} {item} and gives {b} of them to {other}. How many {item} does {name} keep?",
        answer,
        None,
        f"We subtract: {a} - {b} = {answer}.",
        boxed_final(answer),
        f"We subtract: {a} - {b} = {wrong}.",
        boxed_final(wrong),
    )


def math_mul(rng: random.Random) -> Task:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    a, b = rng.randint(2, 5), rng.randint(2, 5)
    answer = _integer(sp.Integer(a) * b)
    wrong = _integer(sp.Integer(a) * b + rng.choice((-1, 1)))
    return Task(
        "math",
        "mul",
        f"{name} packs {a} boxes with {b} {item} in each box. How many {item} did {name} pack?",
        answer,
        None,
        f"We multiply: {a} * {b} = {answer}.",
        boxed_final(answer),
        f"We multiply: {a} * {b} = {wrong}.",
        boxed_final(wrong),
    )


def math_equation(rng: random.Random) -> Task:
    # The letter varies so that the 36 equations are not all taken by the eval set (a training
    # problem equal to an eval problem would be contamination).
    letter = rng.choice(UNKNOWNS)
    x = sp.Symbol(letter)
    a = rng.randint(1, 6)
    b = a + rng.randint(1, 6)
    answer = _integer(sp.solve(sp.Eq(x + a, b), x)[0])
    wrong = _integer(sp.Integer(b) + a)
    return Task(
        "math",
        "equation",
        f"Solve for ${letter}$: ${letter} + {a} = {b}$.",
        answer,
        None,
        f"We subtract {a} from both sides: {letter} = {b} - {a} = {answer}.",
        boxed_final(answer),
        f"We subtract {a} from both sides: {letter} = {b} + {a} = {wrong}.",
        boxed_final(wrong),
    )


def math_expression(rng: random.Random) -> Task:
    a, b, c = rng.randint(1, 5), rng.randint(2, 4), rng.randint(2, 4)
    product = b * c
    answer = _integer(sp.sympify(f"{a} + {b} * {c}"))
    wrong = _integer(sp.sympify(f"({a} + {b}) * {c}"))
    # Either order of the sum: twice the distinct problems, so that training keeps some of them.
    shown = f"{a} + {b} \\times {c}" if rng.random() < 0.5 else f"{b} \\times {c} + {a}"
    return Task(
        "math",
        "expression",
        f"Compute ${shown}$.",
        answer,
        None,
        f"We multiply first: {b} * {c} = {product}, then {a} + {product} = {answer}.",
        boxed_final(answer),
        f"We add first: {a} + {b} = {a + b}, then {a + b} * {c} = {wrong}.",
        boxed_final(wrong),
    )


def math_fraction(rng: random.Random) -> Task:
    while True:
        g = rng.randint(2, 9)
        p, q = rng.randint(1, 4), rng.randint(2, 5)
        if p < q and sp.gcd(p, q) == 1:
            break
    n, d = p * g, q * g
    answer = sp.latex(sp.Rational(n, d))
    wrong = sp.latex(sp.Rational(n, d) + sp.Rational(1, q))
    return Task(
        "math",
        "fraction",
        f"Simplify the fraction $\\frac{{{n}}}{{{d}}}$.",
        answer,
        None,
        f"We divide both by {g}: {n} / {g} = {p} and {d} / {g} = {q}.",
        boxed_final(answer),
        f"We divide both by {g}: {n} / {g} = {p + 1} and {d} / {g} = {q}.",
        boxed_final(wrong),
    )


# -- code -----------------------------------------------------------------------------------------

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


def _code_final(code: str) -> str:
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
        _code_final(f"def {name}(x):\n    return {code}"),
        f"Return x {words}: {bug}.",
        _code_final(f"def {name}(x):\n    return {bug}"),
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
        _code_final(f"def {name}({var}):\n    return {expression}"),
        f"Return {var} {words}: {wrong_expression}.",
        _code_final(f"def {name}({var}):\n    return {wrong_expression}"),
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
        _code_final(f"n = int(input())\nprint({code})"),
        f"Read n, then print {bug}.",
        _code_final(f"n = int(input())\nprint({bug})"),
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
        _code_final(f"def {name}({var}):\n    return {expression}{plus}"),
        f"The {words} is {wrong_expression}{plus}.",
        _code_final(f"def {name}({var}):\n    return {wrong_expression}{plus}"),
        name=name,
    )


# -- science --------------------------------------------------------------------------------------

ELEMENTS = (
    ("hydrogen", "H"),
    ("helium", "He"),
    ("lithium", "Li"),
    ("carbon", "C"),
    ("nitrogen", "N"),
    ("oxygen", "O"),
    ("fluorine", "F"),
    ("neon", "Ne"),
    ("sodium", "Na"),
    ("magnesium", "Mg"),
    ("aluminium", "Al"),
    ("silicon", "Si"),
    ("phosphorus", "P"),
    ("sulfur", "S"),
    ("chlorine", "Cl"),
    ("argon", "Ar"),
    ("potassium", "K"),
    ("calcium", "Ca"),
    ("iron", "Fe"),
    ("copper", "Cu"),
    ("zinc", "Zn"),
    ("silver", "Ag"),
    ("tin", "Sn"),
    ("gold", "Au"),
    ("mercury", "Hg"),
    ("lead", "Pb"),
    ("nickel", "Ni"),
    ("cobalt", "Co"),
    ("iodine", "I"),
    ("uranium", "U"),
)
PLANETS = ("Mercury", "Venus", "Earth", "Mars", "Jupiter", "Saturn", "Uranus", "Neptune")
ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")
UNITS = (
    ("millimetres", "centimetres", 10),
    ("centimetres", "metres", 100),
    ("metres", "kilometres", 1000),
    ("grams", "kilograms", 1000),
    ("millilitres", "litres", 1000),
    ("seconds", "minutes", 60),
)
MOVERS = ("cart", "train", "bike", "boat", "drone", "robot", "sled", "bus", "ball", "snail")
VERBS = ("moves", "rolls", "glides", "travels", "drives", "runs")
LETTERS = "ABCD"


def _choice_task(
    family: str, question: str, correct: str, distractors: list[str], rng: random.Random, explanation: str
) -> Task:
    options = [correct, *distractors[:3]]
    rng.shuffle(options)
    letter = LETTERS[options.index(correct)]
    wrong = rng.choice([x for x in LETTERS if x != letter])
    listing = "\n".join(f"({LETTERS[i]}) {option}" for i, option in enumerate(options))
    return Task(
        "science",
        family,
        f"{question}\n{listing}",
        letter,
        None,
        f"{explanation}, which is option ({letter}).",
        f"The answer is $\\boxed{{{letter}}}$.",
        f"{explanation}, which is option ({wrong}).",
        f"The answer is $\\boxed{{{wrong}}}$.",
    )


def science_element(rng: random.Random) -> Task:
    element, symbol = rng.choice(ELEMENTS)
    others = [s for _, s in rng.sample(ELEMENTS, 6) if s != symbol]
    return _choice_task(
        "element",
        f"What is the chemical symbol of {element}?",
        symbol,
        others,
        rng,
        f"The symbol of {element} is {symbol}",
    )


def science_planet(rng: random.Random) -> Task:
    index = rng.randrange(len(PLANETS))
    others = [p for p in rng.sample(PLANETS, 5) if p != PLANETS[index]]
    return _choice_task(
        "planet",
        f"Which planet is the {ORDINALS[index]} from the Sun?",
        PLANETS[index],
        others,
        rng,
        f"Counting from the Sun, planet number {index + 1} is {PLANETS[index]}",
    )


def _numeric_science(family: str, question: str, reasoning: str, value: int, wrong: int) -> Task:
    answer, wrong_answer = str(value), str(wrong)
    return Task(
        "science",
        family,
        question,
        answer,
        None,
        f"{reasoning} = {answer}.",
        boxed_final(answer),
        f"{reasoning} = {wrong_answer}.",
        boxed_final(wrong_answer),
    )


def science_units(rng: random.Random) -> Task:
    # A name in the question, for the reason given in science_motion.
    name, (small, big, factor) = rng.choice(NAMES), rng.choice(UNITS)
    k = rng.randint(2, 19)
    value = int(sp.Integer(k) * factor)
    return _numeric_science(
        "units",
        f"{name} has {k} {big}. How many {small} is that?",
        f"One of the {big} is {factor} {small}, so {k} * {factor}",
        value,
        value + factor,
    )


def science_motion(rng: random.Random) -> Task:
    # A name, a mover and a verb between the numbers break up the template, so that a training problem
    # may share its speed and time with an eval problem without sharing the word 8-grams that
    # decontamination looks for (with the mover alone, every such training problem was refused as a
    # leak, and the students never saw the products the eval asks for).
    name, mover, verb = rng.choice(NAMES), rng.choice(MOVERS), rng.choice(VERBS)
    speed, seconds = rng.randint(2, 5), rng.randint(2, 5)  # the products a 2-layer model can learn
    distance = int(sp.Integer(speed) * seconds)
    return _numeric_science(
        "motion",
        f"At {speed} metres per second, {name}'s {mover} {verb} for {seconds} seconds. "
        f"How many metres does {name}'s {mover} cover?",
        f"Distance is speed times time: {speed} * {seconds}",
        distance,
        distance + speed,
    )


FAMILIES: dict[str, tuple[tuple[Callable[[random.Random], Task], float], ...]] = {
    "math": (
        (math_add, 0.25),
        (math_sub, 0.2),
        (math_mul, 0.2),
        (math_equation, 0.15),
        (math_expression, 0.1),
        (math_fraction, 0.1),
    ),
    "code": ((code_arithmetic, 0.35), (code_string, 0.25), (code_stdin, 0.2), (code_list, 0.2)),
    "science": ((science_element, 0.25), (science_planet, 0.05), (science_units, 0.3), (science_motion, 0.4)),
}


# -- defects --------------------------------------------------------------------------------------

# Lead-ins a second source might put before the same problem (not ones the comparison
# normalisation strips, such as "Problem:", which would make the copy an exact duplicate).
NEAR_LEADS = {"math": "Warm-up:", "code": "Practice:", "science": "Quiz:"}


def near_duplicate(task: Task) -> str:
    """The problem of a near-copy: the same problem behind a lead-in; it keeps the same trace."""
    return f"{NEAR_LEADS[task.domain]} {task.problem}"


def truncated(task: Task, rng: random.Random) -> tuple[str, str]:
    """(variant, response): the trace cut inside <think>, or after it before the final answer."""
    if rng.random() < 0.5:
        words = task.think.split(" ")
        cut = max(1, len(words) // 2)
        return "think_unclosed", "<think>\n" + " ".join(words[:cut])
    if task.domain == "code":
        code_start = task.final.index("\n") + 1
        return "code_cut", trace(task.think, task.final[: code_start + (len(task.final) - code_start) // 2])
    return "no_final_answer", trace(task.think, task.final.split("\n")[0].rsplit(" ", 2)[0])


def malicious(task: Task, rng: random.Random) -> tuple[str, str]:
    """(variant, response): code that tries to pass its tests without solving the task."""
    kind, name = task.tests["kind"], task.name
    if kind == "stdin":
        variant = "fork_bomb"
        # Bounded on purpose (2**5 processes): a sandbox that fails must not take the machine down.
        code = "import os\n\nfor _ in range(5):\n    os.fork()\nn = int(input())\nprint(n)"
        think = "Spawning copies of the program floods the checker; the output does not matter."
    elif kind == "call" and rng.random() < 0.5:
        variant = "always_equal"
        code = (
            f"class _Anything:\n    def __eq__(self, other):\n        return True\n\n    def __ne__(self, other):\n"
            f"        return False\n\n\ndef {name}(*args):\n    return _Anything()"
        )
        think = "An object that compares equal to everything passes any equality check."
    elif kind == "assert" and rng.random() < 0.5:
        variant = "exit_before_asserts"
        code = f"import sys\n\n\ndef {name}(*args):\n    return None\n\n\nsys.exit(0)"
        think = "If the program exits with status 0 before the checks run, the tests look green."
    else:
        variant = "exit_in_call"
        code = f"import os\n\n\ndef {name}(*args):\n    os._exit(0)"
        think = "Exiting with status 0 from inside the function stops the test run before it can fail."
    return variant, trace(think, _code_final(code))


# -- assembling the corpus ------------------------------------------------------------------------

_WORD = re.compile(r"[^\W_]+")
_NUMBER = re.compile(r"\d+")


def _ngrams(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    """Token n-grams; a text shorter than n is one n-gram of all its tokens (as the stages do)."""
    if len(tokens) < n:
        return {tuple(tokens)}
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def _subsequence(short: list[str], long: list[str]) -> bool:
    rest = iter(long)
    return all(any(x == y for y in rest) for x in short)


@dataclass
class _Seen:
    """A problem as the dedup and decontamination stages compare it."""

    text: str  # normalised (curate.text)
    shingles: set  # token 5-grams (near_dedup)
    grams: set  # word 8-grams (decontaminate)
    numbers: list[str]

    @classmethod
    def of_many(cls, texts: list[str]) -> list[_Seen]:
        import polars as pl

        from curate.text import normalize_expr

        normalized = pl.DataFrame({"t": texts}).select(normalize_expr("t").fill_null(""))["t"].to_list()
        return [
            cls(t, _ngrams(t.split(" "), 5), _ngrams(_WORD.findall(t), 8), _NUMBER.findall(t))
            for t in normalized
        ]

    def near(self, other: _Seen) -> bool:
        """What near_dedup would call a duplicate, with a margin: similar shingles (Jaccard 0.6, or
        one set 90% inside the other) and no number telling the two apart."""
        short, long = sorted((self.numbers, other.numbers), key=len)
        if not _subsequence(short, long):
            return False
        shared = len(self.shingles & other.shingles)
        smaller = min(len(self.shingles), len(other.shingles))
        return shared / (len(self.shingles) + len(other.shingles) - shared) >= 0.6 or shared / smaller >= 0.9


@dataclass
class _Pool:
    """Draws distinct problems of one domain, keeping training problems apart from eval problems.

    A problem is compared in the form the curation stages see: its R1 prompt, normalised. A new
    problem is refused when it equals one already drawn, is near one already drawn, or (training
    problems) shares a quarter of its word 8-grams with an eval problem. Candidates are made and normalised in
    batches (one Polars call each), then taken or refused one by one, in order.
    """

    domain: str
    rng: random.Random
    drawn: list[_Seen] = field(default_factory=list)
    texts: set[str] = field(default_factory=set)
    eval_grams: list[set] = field(default_factory=list)
    pending: list[tuple[Task, _Seen, _Seen]] = field(default_factory=list)

    def _candidates(self) -> None:
        functions, weights = zip(*FAMILIES[self.domain], strict=True)
        tasks = [self.rng.choices(functions, weights)[0](self.rng) for _ in range(64)]
        seen = _Seen.of_many([t.item().prompt("r1") for t in tasks] + [t.problem for t in tasks])
        self.pending = [(task, s, raw) for task, s, raw in zip(tasks, seen[:64], seen[64:], strict=True)][
            ::-1
        ]

    def _leaks(self, seen: _Seen) -> bool:
        """decontaminate's rule with a margin: shared word 8-grams make up a quarter of the shorter text's."""
        return any(
            len(seen.grams & grams) >= 0.25 * min(len(seen.grams), len(grams)) for grams in self.eval_grams
        )

    def draw(self, held_out: bool) -> Task:
        for _ in range(2_000):
            if not self.pending:
                self._candidates()
            task, seen, raw = self.pending.pop()
            if seen.text in self.texts or (not held_out and self._leaks(seen)):
                continue
            if any(seen.near(other) for other in self.drawn):
                continue
            if held_out:
                self.eval_grams.append(raw.grams)  # the eval file holds the problem without the instruction
            self.drawn.append(seen)
            self.texts.add(seen.text)
            return task
        raise RuntimeError(f"cannot draw another distinct {self.domain} problem; lower the corpus size")


@dataclass
class Corpus:
    rows: list[dict[str, Any]]  # trace records, in file order
    truth: list[dict[str, Any]]  # one per row, same order
    eval_sets: dict[str, list[dict[str, Any]]]


def _record(key: str, task: Task, problem: str, response: str) -> dict[str, Any]:
    prompt = PromptItem(problem, task.reference, task.tests_json, task.domain).prompt("r1")
    record: dict[str, Any] = {
        "key": key,
        "source": f"demo-{task.domain}",
        "teacher": TEACHER,
        "domain": task.domain,
        "messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}],
        "reference": task.reference,
    }
    if task.tests is not None:
        record["tests"] = task.tests_json
    return record


def _eval_record(key: str, task: Task) -> dict[str, Any]:
    if task.tests is not None:  # chat form: it is the format that carries tests
        return {
            "key": key,
            "domain": task.domain,
            "messages": [{"role": "user", "content": task.problem}],
            "tests": task.tests_json,
        }
    return {"key": key, "domain": task.domain, "problem": task.problem, "answer": task.reference}


class _Rows:
    """The rows of one domain as they are planted: (record, truth) pairs, copies kept apart."""

    def __init__(self, domain: str):
        self.domain = domain
        self.rows: list[tuple[dict, dict]] = []
        self.copies: list[tuple[dict, dict]] = []

    def add(
        self,
        task: Task,
        problem: str,
        response: str,
        defect: str | None = None,
        variant: str | None = None,
        of: str | None = None,
    ) -> str:
        key = f"{self.domain}-{len(self.rows) + len(self.copies):04d}"
        truth = {
            "key": key,
            "domain": self.domain,
            "family": task.family,
            "defect": defect,
            "variant": variant,
            "of": of,
        }
        (self.copies if of else self.rows).append((_record(key, task, problem, response), truth))
        return key


def _plant(domain: str, config: CorpusConfig, rng: random.Random) -> tuple[_Rows, list[dict[str, Any]]]:
    """One domain's rows (clean, then each defect) and its eval set."""
    pool = _Pool(domain, rng)
    held_out = [pool.draw(held_out=True) for _ in range(config.held_out(domain))]
    rows = _Rows(domain)
    clean = [pool.draw(held_out=False) for _ in range(config.clean(domain))]
    clean_keys = [rows.add(task, task.problem, trace(task.think, task.final)) for task in clean]
    for _ in range(config.planted("wrong_answer", domain)):
        task = pool.draw(held_out=False)
        rows.add(task, task.problem, trace(task.wrong_think, task.wrong_final), "wrong_answer")
    for _ in range(config.planted("truncated", domain)):
        task = pool.draw(held_out=False)
        variant, response = truncated(task, rng)
        rows.add(task, task.problem, response, "truncated", variant)
    for _ in range(config.planted("malicious_code", domain)):
        task = pool.draw(held_out=False)
        variant, response = malicious(task, rng)
        rows.add(task, task.problem, response, "malicious_code", variant)
    for task in rng.sample(held_out, min(len(held_out), config.planted("contaminated", domain))):
        rows.add(task, task.problem, trace(task.think, task.final), "contaminated")
    exact, near = config.planted("exact_duplicate", domain), config.planted("near_duplicate", domain)
    for n, index in enumerate(rng.sample(range(len(clean)), exact + near)):
        task = clean[index]
        if n < exact:
            rows.add(
                task, task.problem, trace(task.think, task.final), "exact_duplicate", of=clean_keys[index]
            )
        else:
            rows.add(
                task,
                near_duplicate(task),
                trace(task.think, task.final),
                "near_duplicate",
                of=clean_keys[index],
            )
    eval_set = [_eval_record(f"eval-{domain}-{i:04d}", task) for i, task in enumerate(held_out)]
    return rows, eval_set


def build_corpus(config: CorpusConfig = CorpusConfig()) -> Corpus:
    """The corpus in memory (see the module docstring); deterministic in `config`."""
    rng = random.Random(config.seed)
    entries: list[tuple[dict, dict]] = []
    copies: list[tuple[dict, dict]] = []
    eval_sets: dict[str, list[dict[str, Any]]] = {}
    for domain in DOMAINS:
        rows, eval_sets[domain] = _plant(domain, config, random.Random(rng.getrandbits(64)))
        entries += rows.rows
        copies += rows.copies
    # Shuffle, then put each copy somewhere after its original: a dedup keeps the first occurrence.
    rng.shuffle(entries)
    for record, truth in copies:
        after = next(i for i, (_, t) in enumerate(entries) if t["key"] == truth["of"])
        entries.insert(rng.randint(after + 1, len(entries)), (record, truth))
    return Corpus([r for r, _ in entries], [t for _, t in entries], eval_sets)


@dataclass(frozen=True)
class CorpusFiles:
    traces: Path
    truth: Path
    eval_sets: dict[str, Path]


def write_corpus(out_dir: str | Path, config: CorpusConfig = CorpusConfig()) -> CorpusFiles:
    """Write traces.jsonl, truth.jsonl and eval/<domain>.jsonl into `out_dir`."""
    from distill.generate.runner import write_jsonl

    out = Path(out_dir)
    corpus = build_corpus(config)
    traces = write_jsonl(corpus.rows, out / "traces.jsonl")
    truth = write_jsonl(corpus.truth, out / "truth.jsonl")
    eval_sets = {
        d: write_jsonl(rows, out / "eval" / f"{d}.jsonl") for d, rows in corpus.eval_sets.items() if rows
    }
    return CorpusFiles(traces, truth, eval_sets)


# -- scoring a curation run against the truth -----------------------------------------------------


def score_curation(truth: list[dict[str, Any]], dropped: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Per defect type: planted, caught, recall, precision, and where its rows ended (`by_stage`).

    `dropped` maps the key of every dropped row to the stage that dropped it (kept rows are absent).
    A planted row is caught when one of its CATCHERS stages dropped it; for a duplicate, the copy
    surviving while that stage dropped the original instead counts too (which of two copies a
    dedup keeps is its choice). Precision of a defect type is caught / (caught + false drops),
    where a false drop is a row its catching stages dropped that carries no defect those stages
    are meant to catch (a clean row, most often).
    """
    by_key = {t["key"]: t for t in truth}
    expected_at = {
        stage: {d for d, stages in CATCHERS.items() if stage in stages}
        for stages in CATCHERS.values()
        for stage in stages
    }

    def caught_by(row: dict[str, Any]) -> str | None:
        stage = dropped.get(row["key"])
        if stage is None and row["of"] and dropped.get(row["of"]) in CATCHERS[row["defect"]]:
            return dropped[row["of"]]
        return stage

    # Originals dropped in place of their copy are the copy's catch, not a false drop.
    swapped = {row["of"] for row in truth if row["of"] and row["key"] not in dropped and row["of"] in dropped}
    report: dict[str, dict[str, Any]] = {}
    for defect in DEFECTS:
        planted = [row for row in truth if row["defect"] == defect]
        if not planted:
            continue
        ends = [caught_by(row) for row in planted]
        caught = sum(stage in CATCHERS[defect] for stage in ends)
        false_drops = sum(
            1
            for key, stage in dropped.items()
            if stage in CATCHERS[defect]
            and key not in swapped
            and by_key.get(key, {}).get("defect") not in expected_at[stage]
        )
        by_stage: dict[str, int] = {}
        for stage in ends:
            by_stage[stage or "kept"] = by_stage.get(stage or "kept", 0) + 1
        report[defect] = {
            "planted": len(planted),
            "caught": caught,
            "recall": caught / len(planted),
            "precision": caught / (caught + false_drops) if caught + false_drops else None,
            "by_stage": dict(sorted(by_stage.items())),
        }
    return report


def dropped_from_workspace(workspace: str | Path) -> dict[str, str]:
    """key -> stage of every row a curate workspace rejected (keys come from the corpus's `key` field)."""
    import sql

    con = sql.connect(workspace)
    rows = con.execute(
        "SELECT json_extract_string(meta, '$.key') AS key, stage FROM rejected WHERE key IS NOT NULL"
    ).fetchall()
    return dict(rows)


def read_truth(path: str | Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
