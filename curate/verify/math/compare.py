"""Decide whether a predicted answer is the same mathematical object as the reference.

Numbers are never compared as floats when an exact decision is possible:
- two rationals (integers, fractions, decimals as written) are equal only if exactly equal, so
  `1/3` is not `0.33` and `1/2004!` is not `1/2006!`;
- if the difference of two constants reduces to a rational (`pi + 1/2004!` vs `pi + 1/2006!`),
  that rational decides;
- a rational and a value sympy knows to be irrational are different (`1.41421356` is not `\\sqrt{2}`);
- algebraic values (radicals) are equal only if their difference has minimal polynomial x,
  which is exact (`\\sqrt{5+2\\sqrt{6}}` equals `\\sqrt{2}+\\sqrt{3}`).
Only what is left (transcendental values such as trigonometric or logarithmic expressions) is
compared numerically: both sides are evaluated to NUMERIC_DIGITS significant digits and called
equal when their relative difference is at most RELATIVE_TOLERANCE (1e-20). Two distinct
transcendental values closer than that would be called equal; answers are not built that way.

Expressions with variables: equal when they agree, by the rules above, at PROBE_POINTS fixed
rational points (both signs), at least two of them defined. A nonzero rational function vanishes
at a few such points with negligible probability (Schwartz-Zippel); at rational points polynomial
and rational expressions evaluate exactly.

Equations are compared as equations: `f = g` and `u = v` are the same when (f - g) / (u - v) is
a nonzero constant, so `y = 2x + 3` equals `2y = 4x + 6` but `3x - y + 13 = 0` never equals
`3x + 4y + 14 = 0` (they do not "both collapse to 0").
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from functools import lru_cache

import mpmath
import sympy
from sympy.core.function import AppliedUndef
from sympy.polys.polyerrors import BasePolynomialError

from curate.verify.math.parse import Interval, Items, Matrix, Node, Relation, Scalar, Text, Union

NUMERIC_DIGITS = 40
RELATIVE_TOLERANCE = mpmath.mpf("1e-20")
PROBE_POINTS = 4  # points tried for expressions with variables; at least 2 must be defined
_INFINITIES = (sympy.oo, -sympy.oo, sympy.zoo, sympy.nan)
_X = sympy.Dummy("x")


@lru_cache(maxsize=64)
def _probe_values(count: int, symbols: int) -> tuple[tuple[sympy.Rational, ...], ...]:
    """Fixed pseudo-random rational points, both signs, away from 0 and +-1 (seeded: reproducible)."""
    rng = random.Random(20240601)
    points = []
    for _ in range(count):
        row = []
        for _ in range(symbols):
            value = sympy.Rational(rng.randint(23, 389), rng.randint(11, 97))
            row.append(value if rng.random() < 0.7 else -value)
        points.append(tuple(row))
    return tuple(points)


def _to_mpc(value: sympy.Expr) -> mpmath.mpc | None:
    """A numeric sympy value as an mpmath complex, or None when it is not a finite number."""
    real, imag = value.as_real_imag()
    if not (real.is_Number and imag.is_Number) or real in _INFINITIES or imag in _INFINITIES:
        return None
    parts = (mpmath.mpf(sympy.Float(part, NUMERIC_DIGITS)._mpf_) for part in (real, imag))
    return mpmath.mpc(*parts)


def _evaluate(expr: sympy.Expr) -> mpmath.mpc | None:
    try:
        return _to_mpc(expr.evalf(NUMERIC_DIGITS))
    except (TypeError, ValueError, ZeroDivisionError, ArithmeticError, AttributeError):
        return None


def _close(x: mpmath.mpc, y: mpmath.mpc) -> bool:
    with mpmath.workdps(NUMERIC_DIGITS):
        scale = max(abs(x), abs(y))
        return scale == 0 or abs(x - y) <= RELATIVE_TOLERANCE * scale


def _is_number(expr: sympy.Basic) -> bool:
    return isinstance(expr, sympy.Expr) and not expr.free_symbols


def constants_equal(a: sympy.Expr, b: sympy.Expr) -> bool:
    """Equality of two expressions without variables (see the module docstring)."""
    if a == b:
        return True
    if a.is_Rational and b.is_Rational:
        return False
    if a.has(*_INFINITIES) or b.has(*_INFINITIES):
        return False
    difference = a - b
    if difference.is_Number:
        return difference == 0
    # An exact value and one sympy knows to be irrational are distinct, however close.
    if (a.is_Rational and b.is_rational is False) or (b.is_Rational and a.is_rational is False):
        return False
    # (not difference.is_zero: sympy answers False for cot(245/79) - cos(245/79)/sin(245/79))
    x, y = _evaluate(a), _evaluate(b)
    if x is None or y is None or not _close(x, y):
        return False
    if difference.is_algebraic:
        try:
            return sympy.minimal_polynomial(difference, _X) == _X
        except (NotImplementedError, ValueError, TypeError, BasePolynomialError):
            pass  # sympy could not finish the exact test: the numeric agreement stands
    return True


def _value_at(expr: sympy.Expr, point: dict[sympy.Symbol, sympy.Rational]) -> sympy.Expr | None:
    value = expr.xreplace(point)
    if value.has(*_INFINITIES):
        return None
    return value


def _same_at_points(a: sympy.Expr, b: sympy.Expr, compare: Callable[[sympy.Expr, sympy.Expr], bool]) -> bool:
    """compare(a(p), b(p)) at the probe points where both are defined (at least two of them)."""
    symbols = sorted(a.free_symbols | b.free_symbols, key=lambda s: s.name)
    defined = 0
    for values in _probe_values(PROBE_POINTS, len(symbols)):
        point = dict(zip(symbols, values, strict=True))
        va, vb = _value_at(a, point), _value_at(b, point)
        if va is None or vb is None:
            continue
        if not compare(va, vb):
            return False
        defined += 1
    return defined >= 2


def expressions_equal(a: sympy.Basic, b: sympy.Basic) -> bool:
    """Equality of two sympy values: numbers, expressions with variables, or matrices."""
    if isinstance(a, sympy.MatrixBase) or isinstance(b, sympy.MatrixBase):
        return (
            isinstance(a, sympy.MatrixBase)
            and isinstance(b, sympy.MatrixBase)
            and a.shape == b.shape
            and all(expressions_equal(x, y) for x, y in zip(a, b, strict=True))
        )
    if not (isinstance(a, sympy.Expr) and isinstance(b, sympy.Expr)):
        return False
    if a == b:
        return True
    if _is_number(a) and _is_number(b):
        return constants_equal(a, b)
    difference = a - b
    if difference.is_Number:  # e.g. x + 1/2004! against x + 1/2006!
        return difference == 0
    return _same_at_points(a, b, constants_equal)


def _readings(scalar: Scalar) -> list[sympy.Basic]:
    """The values a scalar may stand for: 30° is 30 or pi/6, 10% is 10 or 1/10."""
    values = [scalar.expr]
    if scalar.unit == "degree" and isinstance(scalar.expr, sympy.Expr):
        values.append(scalar.expr * sympy.pi / 180)
    elif scalar.unit == "percent" and isinstance(scalar.expr, sympy.Expr):
        values.append(scalar.expr / 100)
    return values


def scalars_equal(gold: Scalar, pred: Scalar) -> bool:
    bases = {unit for unit in (gold.unit, pred.unit) if unit and unit.startswith("base")}
    if len(bases) > 1 and gold.unit != pred.unit:  # 12_5 is not 12_6; a bare 12 may omit the base
        return False
    return any(expressions_equal(g, p) for g in _readings(gold) for p in _readings(pred))


# --- relations --------------------------------------------------------------------------------------

_FLIP = {">": "<", ">=": "<=", "<": ">", "<=": ">=", "=": "=", "!=": "!="}


def _canonical(relation: Relation) -> tuple[tuple[str, ...], tuple[Node, ...]]:
    """Write chains with `<`/`<=` (reversing `a > b > c`), so `x > 2` and `2 < x` read the same."""
    if any(op in (">", ">=") for op in relation.ops):
        return tuple(_FLIP[op] for op in reversed(relation.ops)), tuple(reversed(relation.parts))
    return relation.ops, relation.parts


def _constant_ratio(f: sympy.Expr, g: sympy.Expr) -> sympy.Expr | None:
    """The constant c with f = c * g (c != 0), judged at the probe points; None when f / g varies."""
    symbols = sorted(f.free_symbols | g.free_symbols, key=lambda s: s.name)
    ratios = []
    for values in _probe_values(PROBE_POINTS, len(symbols)):
        point = dict(zip(symbols, values, strict=True))
        at_f, at_g = _value_at(f, point), _value_at(g, point)
        if at_f is not None and at_g is not None and at_g != 0:
            ratios.append(at_f / at_g)
    if len(ratios) >= 2 and ratios[0] != 0 and all(constants_equal(ratios[0], r) for r in ratios[1:]):
        return ratios[0]
    return None


def relations_equal(gold: Relation, pred: Relation) -> bool:
    if gold.name and gold.name == pred.name:
        return equivalent(gold.parts[-1], pred.parts[-1])
    gold_ops, gold_parts = _canonical(gold)
    pred_ops, pred_parts = _canonical(pred)
    if gold_ops != pred_ops or not all(isinstance(p, Scalar) for p in gold_parts + pred_parts):
        return False
    exprs = [[p.expr for p in parts] for parts in (gold_parts, pred_parts)]
    if not all(isinstance(e, sympy.Expr) for e in exprs[0] + exprs[1]):
        return False
    if not any(e.free_symbols for e in exprs[0] + exprs[1]):
        # statements about numbers ("0.56 = 56%"): the same numbers, not a proportional "equation"
        return all(scalars_equal(g, p) for g, p in zip(gold_parts, pred_parts, strict=True))
    if len(gold_ops) == 1:
        ratio = _constant_ratio(exprs[0][0] - exprs[0][1], exprs[1][0] - exprs[1][1])
        if ratio is None:
            return False
        # an inequality may only be scaled by a positive number (a negative one flips it)
        return gold_ops[0] in ("=", "!=") or bool(ratio.is_positive)
    return all(expressions_equal(g, p) for g, p in zip(exprs[0], exprs[1], strict=True))


# --- intervals -------------------------------------------------------------------------------------

_OPEN = {"<": True, "<=": False}


def _relation_intervals(relation: Relation) -> list[Interval] | None:
    """`a < x <= b`, `x > a` ... in one variable as an interval."""
    ops, parts = _canonical(relation)
    if not ops or any(op not in _OPEN for op in ops) or not all(isinstance(p, Scalar) for p in parts):
        return None
    exprs = [p.expr for p in parts]
    # the variable: a symbol, or a function value such as f(x) in "0 < f(x) < 1"
    variables = [i for i, e in enumerate(exprs) if isinstance(e, (sympy.Symbol, AppliedUndef))]
    if len(variables) != 1 or any(not _is_number(e) for i, e in enumerate(exprs) if i != variables[0]):
        return None
    at = variables[0]
    if len(parts) == 2:
        if at == 0:
            return [Interval(Scalar(-sympy.oo), parts[1], True, _OPEN[ops[0]])]
        return [Interval(parts[0], Scalar(sympy.oo), _OPEN[ops[0]], True)]
    if len(parts) == 3 and at == 1:
        return [Interval(parts[0], parts[2], _OPEN[ops[0]], _OPEN[ops[1]])]
    return None


def as_intervals(node: Node) -> list[Interval] | None:
    """A set of reals written as intervals, a union, an open pair or inequalities, else None."""
    if isinstance(node, Interval):
        return [node]
    if isinstance(node, Items) and node.kind == "pair":
        lo, hi = node.items
        return [Interval(lo, hi, True, True)] if isinstance(lo, Scalar) and isinstance(hi, Scalar) else None
    if isinstance(node, Relation):
        return _relation_intervals(node)
    if isinstance(node, Union) or (isinstance(node, Items) and node.kind in ("list", "pm")):
        parts = node.parts if isinstance(node, Union) else node.items
        out: list[Interval] = []
        for part in parts:
            intervals = as_intervals(part)
            if intervals is None:
                return None
            out.extend(intervals)
        return out
    return None


def _intervals_equal(a: Interval, b: Interval) -> bool:
    return (
        a.left_open == b.left_open
        and a.right_open == b.right_open
        and scalars_equal(a.lo, b.lo)
        and scalars_equal(a.hi, b.hi)
    )


# --- collections -----------------------------------------------------------------------------------


def _matched(gold: Sequence[Node], pred: Sequence[Node], same: Callable[[Node, Node], bool]) -> bool:
    """Whether the two collections pair up one-to-one (bipartite matching, augmenting paths)."""
    if len(gold) != len(pred):
        return False
    cache: dict[tuple[int, int], bool] = {}

    def edge(i: int, j: int) -> bool:
        if (i, j) not in cache:
            cache[(i, j)] = same(gold[i], pred[j])
        return cache[(i, j)]

    owner: dict[int, int] = {}

    def place(i: int, seen: set[int]) -> bool:
        for j in range(len(pred)):
            if j not in seen and edge(i, j):
                seen.add(j)
                if j not in owner or place(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    return all(place(i, set()) for i in range(len(gold)))


_ORDERED = ("tuple", "pair")


def items_equal(gold: Items, pred: Items) -> bool:
    if len(gold.items) != len(pred.items):
        return False
    if gold.kind in _ORDERED or pred.kind in _ORDERED:
        # a tuple on either side is compared in order against a plain list, never against a set
        if "set" in (gold.kind, pred.kind):
            return False
        return all(equivalent(g, p) for g, p in zip(gold.items, pred.items, strict=True))
    # unordered, with multiplicity: "1, 1, 2" (a double root) is not "1, 2, 2"
    return _matched(gold.items, pred.items, equivalent)


def _vector(node: Node) -> list[Node] | None:
    """The entries of a row/column matrix or of a tuple, for comparing vectors written either way."""
    if isinstance(node, Matrix) and (len(node.rows) == 1 or len(node.rows[0]) == 1):
        return [cell for row in node.rows for cell in row]
    if isinstance(node, Scalar) and isinstance(node.expr, sympy.MatrixBase) and 1 in node.expr.shape:
        return [Scalar(x) for x in node.expr]
    if isinstance(node, Items) and node.kind in _ORDERED:
        return list(node.items)
    return None


def _matrix_value(node: Node) -> sympy.MatrixBase | None:
    if isinstance(node, Matrix):
        return sympy.ImmutableMatrix([[cell.expr for cell in row] for row in node.rows])
    if isinstance(node, Scalar) and isinstance(node.expr, sympy.MatrixBase):
        return node.expr
    return None


# --- dispatch ---------------------------------------------------------------------------------------


def _unwrap_assignment(node: Node) -> Node:
    """`x = 5` read as 5; `2 + 3 = 5` (a worked computation between numbers) read as 5; `7 = 11a + c` kept."""
    if isinstance(node, Relation) and set(node.ops) == {"="}:
        if node.name:
            return node.parts[-1]
        if all(
            isinstance(part, Scalar) and _is_number(part.expr) for part in (node.parts[0], node.parts[-1])
        ):
            return node.parts[-1]
    return node


def equivalent(gold: Node, pred: Node) -> bool:
    """Whether pred is the same answer as gold."""
    if isinstance(gold, Relation) and isinstance(pred, Relation):
        if relations_equal(gold, pred):
            return True
    elif isinstance(gold, Relation) or isinstance(pred, Relation):
        gold_value, pred_value = _unwrap_assignment(gold), _unwrap_assignment(pred)
        if (gold_value, pred_value) != (gold, pred) and equivalent(gold_value, pred_value):
            return True
    if isinstance(gold, Text) or isinstance(pred, Text):
        if isinstance(gold, Text) and isinstance(pred, Text):
            return gold.words == pred.words
        return _ratio_equal(gold, pred) or _ratio_equal(pred, gold)
    if isinstance(gold, Scalar) and isinstance(pred, Scalar):
        return scalars_equal(gold, pred)
    gold_matrix, pred_matrix = _matrix_value(gold), _matrix_value(pred)
    if gold_matrix is not None and pred_matrix is not None:
        return expressions_equal(gold_matrix, pred_matrix)
    if isinstance(gold, Items) and isinstance(pred, Items):
        if items_equal(gold, pred):
            return True
    gold_intervals, pred_intervals = as_intervals(gold), as_intervals(pred)
    if gold_intervals is not None and pred_intervals is not None:
        # a pair like (1, 2) may be a point: only read it as an interval against an interval
        if not (isinstance(gold, Items) and isinstance(pred, Items)):
            return _matched(gold_intervals, pred_intervals, _intervals_equal)
    gold_vector, pred_vector = _vector(gold), _vector(pred)
    if (
        gold_vector is not None
        and pred_vector is not None
        and (gold_matrix is not None or pred_matrix is not None)
    ):
        return len(gold_vector) == len(pred_vector) and all(
            equivalent(g, p) for g, p in zip(gold_vector, pred_vector, strict=True)
        )
    if isinstance(gold, Items) and gold.kind == "set" and len(gold.items) == 1 and isinstance(pred, Scalar):
        return equivalent(gold.items[0], pred)
    if not isinstance(gold, Items) and isinstance(pred, Items) and pred.kind in ("list", "pm"):
        # "15 39/40, or 639/40": one answer written several ways (not hedging between values)
        return all(equivalent(gold, item) for item in pred.items)
    return False


def _ratio_equal(ratio: Node, value: Node) -> bool:
    """A two-term ratio `7:32` against the number 7/32 (a ratio of more terms is no single number)."""
    if not (isinstance(ratio, Text) and isinstance(value, Scalar) and _is_number(value.expr)):
        return False
    terms = ratio.words.split(":")
    if len(terms) != 2 or not all(t.isdigit() for t in terms) or int(terms[1]) == 0:
        return False
    return expressions_equal(sympy.Rational(int(terms[0]), int(terms[1])), value.expr)


def describe(node: Node) -> str:
    """A short name for the kind of answer, for verdict details (never the value itself)."""
    if isinstance(node, Scalar):
        if isinstance(node.expr, sympy.MatrixBase):
            return "matrix"
        return "number" if _is_number(node.expr) else "expression"
    if isinstance(node, Items):
        return {"pm": "list"}.get(node.kind, node.kind) + f" of {len(node.items)}"
    if isinstance(node, Relation):
        return "equation" if set(node.ops) <= {"="} else "inequality"
    return type(node).__name__.lower()
