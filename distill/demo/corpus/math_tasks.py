"""Math problems: one-digit arithmetic in words, equations, expressions and fractions, with a
one-line `<think>` and a boxed answer."""

from __future__ import annotations

import random

import sympy as sp

from distill.demo.corpus.task import Task, boxed_final

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
