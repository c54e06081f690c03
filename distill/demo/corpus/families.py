"""The problem families of each domain and how often each is drawn."""

from __future__ import annotations

import random
from collections.abc import Callable

from distill.demo.corpus.code_tasks import code_arithmetic, code_list, code_stdin, code_string
from distill.demo.corpus.math_tasks import (
    math_add,
    math_equation,
    math_expression,
    math_fraction,
    math_mul,
    math_sub,
)
from distill.demo.corpus.science_tasks import science_element, science_motion, science_planet, science_units
from distill.demo.corpus.task import Task

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
