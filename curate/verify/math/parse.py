"""Parse a canonical answer string into a small tree of answer nodes with sympy leaves.

The structure (lists, sets, tuples, intervals, unions, relations, matrices) is read here, so
that `(1, 2)` can stay ambiguous between a point and an open interval and each element is
parsed on its own. Leaves are parsed by latex2sympy2_extended, after a fast path for plain
numbers. Decimals are read as exact rationals, so `0.33` is 33/100, never a float.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import sympy
from latex2sympy2_extended import latex2sympy
from latex2sympy2_extended.latex2sympy2 import ConversionConfig

from curate.verify.math.normalize import Cleaned


class ParseError(ValueError):
    """The answer is not something we can read as math."""


@dataclass(frozen=True)
class Scalar:
    expr: sympy.Basic
    unit: str | None = None  # "degree", "percent" (the value may also be read converted) or "base N"


@dataclass(frozen=True)
class Text:
    words: str


@dataclass(frozen=True)
class Relation:
    ops: tuple[str, ...]  # "=", "<", "<=", ">", ">=", "!=" between consecutive parts
    parts: tuple[Node, ...]
    name: str | None = None  # set for an assignment `x = ...` or `AB = ... = 5` (a bare name on the left)


@dataclass(frozen=True)
class Items:
    kind: str  # "tuple" (ordered), "pair" (a 2-tuple or an open interval), "list", "set" (unordered)
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Interval:
    lo: Scalar
    hi: Scalar
    left_open: bool
    right_open: bool


@dataclass(frozen=True)
class Union:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Matrix:
    rows: tuple[tuple[Scalar, ...], ...]


Node = Scalar | Text | Relation | Items | Interval | Union | Matrix

_CONVERSION = ConversionConfig(
    interpret_as_mixed_fractions=True,
    interpret_simple_eq_as_assignment=False,
    interpret_contains_as_eq=True,
    lowercase_symbols=True,
)
_OPENERS, _CLOSERS = "([{", ")]}"
_RELATION_OPS = re.compile(
    r"\\(?:leqslant|geqslant|leq|geq|le|ge|neq|ne|lt|gt|approx|in)(?![a-zA-Z])|<=|>=|!=|<|>|="
)
_OP_NAMES = {
    "\\leqslant": "<=",
    "\\leq": "<=",
    "\\le": "<=",
    "<=": "<=",
    "\\geqslant": ">=",
    "\\geq": ">=",
    "\\ge": ">=",
    ">=": ">=",
    "\\neq": "!=",
    "\\ne": "!=",
    "!=": "!=",
    "\\lt": "<",
    "<": "<",
    "\\gt": ">",
    ">": ">",
    "=": "=",
    "\\in": "in",
    "\\approx": "~",
}
_GREEK = (
    "alpha|beta|gamma|delta|epsilon|varepsilon|zeta|eta|theta|vartheta|iota|kappa|lambda|mu|nu|xi|rho|"
    "sigma|tau|upsilon|phi|varphi|chi|psi|omega|Gamma|Delta|Theta|Lambda|Xi|Sigma|Phi|Psi|Omega"
)
_NAME = re.compile(
    rf"^(?:[A-Za-z](?:_\{{?\w+\}}?)?'*|\\(?:{_GREEK})(?:_\{{?\w+\}}?)?|[A-Za-z]\([A-Za-z]\)|[A-Z]{{2,3}}"
    r"|(?:m\s*)?\\angle\s*[A-Z]{1,3}|\\overline\{[A-Z]{2}\})$"
)
_MATRIX = re.compile(r"^\\begin\{([pbvBV]?matrix|array)\}(.*)\\end\{\1\}$", re.DOTALL)
_ARRAY_SPEC = re.compile(r"^\s*\{[lcr|\s]*\}")
_DEGREE = "^\\circ"
_PERCENT = "\\%"

# Plain numbers, read without latex2sympy: most answers are one of these.
_INTEGER = re.compile(r"^[+-]?\d+$")
_BASE_NUMBER = re.compile(r"^([+-]?\d+)_\{?(\d+)\}?$")
_DECIMAL = re.compile(r"^[+-]?(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d{1,3})?$")  # also 6.02e23
_SLASH_FRACTION = re.compile(r"^([+-]?\d+)\s*/\s*(\d+)$")
_LATEX_FRACTION = re.compile(r"^([+-]?)\s*\\frac\s*(?:\{\s*([+-]?\d+)\s*\}|(\d))\s*(?:\{\s*(\d+)\s*\}|(\d))$")
_MIXED_NUMBER = re.compile(r"^([+-]?)(\d+)\s*\\frac\s*(?:\{\s*(\d+)\s*\}|(\d))\s*(?:\{\s*(\d+)\s*\}|(\d))$")

# Repairs before latex2sympy: \frac43 -> \frac{4}{3}, \sqrt2 -> \sqrt{2}, 0.25 -> exact fraction.
_SHORT_FRAC = [
    (re.compile(r"\\frac\s*(\d)\s*(\d)"), r"\\frac{\1}{\2}"),
    (re.compile(r"\\frac\s*(\d)\s*\{"), r"\\frac{\1}{"),
    (re.compile(r"\\frac\s*\{([^{}]*)\}\s*(\d)"), r"\\frac{\1}{\2}"),
    (re.compile(r"\\frac\s*([a-zA-Z\d]|\\[a-zA-Z]+)\s*([a-zA-Z\d])"), r"\\frac{\1}{\2}"),
    (re.compile(r"\\sqrt\s*(\d|[a-zA-Z](?![a-zA-Z]))"), r"\\sqrt{\1}"),
]
_REPEATING = re.compile(r"(\d*)\.(\d*)\\overline\{(\d+)\}")
_DECIMAL_IN_EXPR = re.compile(r"(?<![\d.])(\d*)\.(\d+)(?![\d.])")


def _to_rational(text: str) -> sympy.Rational:
    try:
        value = Fraction(text)
    except ValueError as error:  # e.g. more digits than Python's int conversion limit
        raise ParseError(f"number too long: {error}") from None
    return sympy.Rational(value.numerator, value.denominator)


def _number(s: str) -> sympy.Rational | None:
    """The exact value of a plain number (integer, decimal, fraction, mixed number), else None."""
    s = re.sub(r"^([+-])\s+", r"\1", s)
    if _INTEGER.match(s) or _DECIMAL.match(s):
        return _to_rational(s)
    match = _SLASH_FRACTION.match(s)
    if match:
        if int(match.group(2)) == 0:
            return None
        return _to_rational(f"{match.group(1)}/{match.group(2)}")
    match = _LATEX_FRACTION.match(s)
    if match:
        sign, num, den = match.group(1), match.group(2) or match.group(3), match.group(4) or match.group(5)
        if int(den) == 0:
            return None
        value = _to_rational(f"{num}/{den}")
        return -value if sign == "-" else value
    match = _MIXED_NUMBER.match(s)
    if match:
        sign, whole = match.group(1), match.group(2)
        num, den = match.group(3) or match.group(4), match.group(5) or match.group(6)
        if int(den) == 0 or int(num) >= int(den):
            return None
        value = _to_rational(whole) + _to_rational(f"{num}/{den}")
        return -value if sign == "-" else value
    return None


def _depths(s: str) -> list[int]:
    """Bracket depth before each character; `(`, `[` and `{` nest alike so `[1, 2)` balances."""
    depth, out = 0, []
    for ch in s:
        if ch in _CLOSERS:
            depth -= 1
        out.append(depth)
        if ch in _OPENERS:
            depth += 1
    return out


def _split_top(s: str, pattern: re.Pattern[str]) -> tuple[list[str], list[str]]:
    """Split s at the matches of pattern that sit at bracket depth 0: (pieces, separators)."""
    depths = _depths(s)
    pieces, seps, start = [], [], 0
    for match in pattern.finditer(s):
        if depths[match.start()] == 0 and (match.start() == 0 or s[match.start() - 1] != "\\"):
            pieces.append(s[start : match.start()])
            seps.append(match.group(0))
            start = match.end()
    pieces.append(s[start:])
    return pieces, seps


_COMMA = re.compile(r"[,;]")
_SEMICOLON = re.compile(r";")
_CUP = re.compile(r"\\cup(?![a-zA-Z])|(?<=[)\]])\s*U\s*(?=[(\[])")
_RATIO = re.compile(r"^\d+(?:\s*:\s*\d+)+$")
_PM = re.compile(r"\\(?:pm|mp)(?![a-zA-Z])")
_LABEL_NOISE = re.compile(
    r"_\{[^{}]*\}|_\w|\\(?:[dt]?frac|angle|overline|mathrm|text|left|right|triangle|vert)(?![a-zA-Z])|[{}\s']"
)
_LABEL_REST = re.compile(r"[A-Za-z|:(),/]+")


def _enclosed(s: str) -> tuple[str, str, str] | None:
    """(opener, inner, closer) when s is one bracketed group like `(1, 2]` or `\\{1, 2\\}`."""
    if s.startswith("\\{") and s.endswith("\\}"):
        opener, group, inner = "{", s[1:], s[2:-2]
    elif len(s) >= 2 and s[0] in "([" and s[-1] in ")]":
        opener, group, inner = s[0], s, s[1:-1]
    else:
        return None
    depths = _depths(group)
    # the opening bracket must close at the very end: "(1)(2)" and "\\{1\\} \\cup \\{2\\}" are not one group
    if all(d > 0 for d in depths[1:-1]) and depths[-1] == 0:
        return opener, inner, "}" if opener == "{" else s[-1]
    return None


def _is_infinite(node: Node) -> bool:
    return isinstance(node, Scalar) and node.expr in (sympy.oo, -sympy.oo)


def _list_node(kind: str, nodes: list[Node]) -> Node:
    """A list/set node; `x = 1, x = 2` and `x = 1, 2` become the values 1 and 2."""
    flat: list[Node] = []
    for node in nodes:
        if isinstance(node, Items) and node.kind == "pm":
            flat.extend(node.items)
        else:
            flat.append(node)
    names = {n.name for n in flat if isinstance(n, Relation)}
    if flat and isinstance(flat[0], Relation) and flat[0].name and names == {flat[0].name}:
        flat = [n.parts[-1] if isinstance(n, Relation) else n for n in flat]
    if len(flat) == 1 and kind in ("list", "pm"):
        return flat[0]
    return Items(kind, tuple(flat))


def _bracketed(opener: str, inner: str, closer: str) -> Node:
    if opener == "{":
        pieces = [p for p in _split_top(inner, _COMMA)[0] if p.strip()]
        return _list_node("set", [parse_latex(p) for p in pieces])
    pieces, _ = _split_top(inner, _COMMA)
    if len(pieces) == 1:
        return parse_latex(inner)
    nodes = [parse_latex(p) for p in pieces]
    if len(nodes) == 2 and all(isinstance(n, Scalar) for n in nodes):
        lo, hi = nodes
        if opener == "(" and closer == ")" and not (_is_infinite(lo) or _is_infinite(hi)):
            return Items("pair", (lo, hi))
        return Interval(lo, hi, opener == "(", closer == ")")
    return Items("tuple", tuple(nodes))


def _relation(pieces: list[str], seps: list[str]) -> Node:
    ops = [_OP_NAMES[sep] for sep in seps]
    if ops == ["~"]:  # "x \approx 11" states the value 11
        ops = ["="]
    if "~" in ops:  # "x = 1/3 \approx 0.33": the exact part is the answer
        cut = ops.index("~")
        pieces, ops = pieces[: cut + 1], ops[:cut]
        if not ops:
            return parse_latex(pieces[0])
    if "in" in ops:
        if ops != ["in"] or not _NAME.match(pieces[0].strip()):
            raise ParseError("unsupported membership")
        return parse_latex(pieces[1])
    if any(not p.strip() for p in pieces):
        raise ParseError("relation with an empty side")
    lhs = pieces[0].strip()
    name = re.sub(r"\s+", "", lhs).lower() if set(ops) == {"="} and is_label(lhs) else None
    try:
        first = parse_latex(lhs)
    except ParseError:
        if name is None:
            raise
        first = Text(lhs)  # "V_{1}:V_{2}": a label that is no expression
    return Relation(tuple(ops), (first, *(parse_latex(p) for p in pieces[1:])), name)


def is_label(lhs: str) -> bool:
    """Whether the left side of `lhs = ...` only names the answer: `x`, `f(x)`, `(p,q)`, `|AB|`,
    `V_{1}:V_{2}`, `\\frac{NO}{BO}`, `\\angle ABC` (no numbers or operators outside subscripts)."""
    if _NAME.match(lhs):
        return True
    rest = _LABEL_NOISE.sub("", lhs)
    return bool(_LABEL_REST.fullmatch(rest)) and any(ch.isalpha() for ch in rest)


def _matrix(body: str) -> Matrix:
    body = _ARRAY_SPEC.sub("", body)
    rows = [row for row in re.split(r"\\\\", body) if row.strip() and not re.fullmatch(r"\s*\\hline\s*", row)]
    cells = tuple(tuple(_scalar(cell) for cell in row.split("&")) for row in rows)
    if not cells or len({len(r) for r in cells}) != 1:
        raise ParseError("ragged matrix")
    return Matrix(cells)


@lru_cache(maxsize=8192)
def parse_latex(s: str) -> Node:
    """Parse canonical LaTeX (see normalize.clean_answer) into a node; ParseError if impossible."""
    s = s.strip().rstrip(".").strip()
    if not s:
        raise ParseError("empty answer")
    pieces, _ = _split_top(s, _CUP)
    if len(pieces) > 1:
        return Union(tuple(parse_latex(p) for p in pieces))
    pieces, _ = _split_top(s, _SEMICOLON)
    if len(pieces) > 1 and any("," in p for p in pieces):  # "p=5,q=2; p=7,q=2": solutions of parts
        return _list_node("list", [parse_latex(p) for p in pieces if p.strip()])
    pieces, _ = _split_top(s, _COMMA)
    if len(pieces) > 1:
        return _list_node("list", [parse_latex(p) for p in pieces if p.strip()])
    if s == "\\emptyset":
        return Items("set", ())
    enclosed = _enclosed(s)
    if enclosed:
        return _bracketed(*enclosed)
    depths = _depths(s)
    if s.startswith("{") and s.endswith("}") and depths[-1] == 0 and all(d > 0 for d in depths[1:-1]):
        return parse_latex(s[1:-1])  # a TeX group around the whole answer, e.g. "{1,3}", groups only
    matrix = _MATRIX.match(s)
    if matrix:
        return _matrix(matrix.group(2))
    if _PM.search(s):  # anywhere, also inside a fraction: \frac{-1 \pm \sqrt{5}}{2} is two values
        plus = _PM.sub(lambda m: "+" if m.group(0) == "\\pm" else "-", s)
        minus = _PM.sub(lambda m: "-" if m.group(0) == "\\pm" else "+", s)
        return _list_node("pm", [parse_latex(plus), parse_latex(minus)])
    pieces, seps = _split_top(s, _RELATION_OPS)
    if seps:
        return _relation(pieces, seps)
    if _RATIO.match(s):  # 3:2 or a time such as 4:30, compared as written
        return Text(s.replace(" ", ""))
    if ":" in s:
        raise ParseError("a colon outside a ratio")
    return _scalar(s)


def _prepare(s: str) -> str:
    for pattern, replacement in _SHORT_FRAC:
        s = pattern.sub(replacement, s)
    s = _REPEATING.sub(lambda m: f"({_repeating_fraction(*m.groups())})", s)
    return _DECIMAL_IN_EXPR.sub(
        lambda m: f"(\\frac{{{m.group(1)}{m.group(2)}}}{{1{'0' * len(m.group(2))}}})", s
    )


def _repeating_fraction(whole: str, fixed: str, period: str) -> str:
    """`1.2\\overline{3}` (1.2333...) as an exact fraction."""
    shift = 10 ** len(fixed)
    value = int(whole or "0") + Fraction(int(fixed or "0"), shift)
    value += Fraction(int(period), (10 ** len(period) - 1) * shift)
    return f"\\frac{{{value.numerator}}}{{{value.denominator}}}"


def _scalar(s: str) -> Scalar:
    s = s.strip()
    unit = None
    if _DEGREE in s:
        unit, s = "degree", s.replace(_DEGREE, " ").strip()
    if s.endswith(_PERCENT):
        unit, s = "percent", s[: -len(_PERCENT)].strip()
    base = _BASE_NUMBER.match(s)
    if base:  # 2516_8: the digits as written, tagged with the base
        return Scalar(_to_rational(base.group(1)), f"base {int(base.group(2))}")
    if not s:
        raise ParseError("a unit without a value")
    number = _number(s)
    if number is not None:
        return Scalar(number, unit)
    try:
        expr = latex2sympy(_prepare(s), normalization_config=None, conversion_config=_CONVERSION)
    except (MemoryError, RecursionError):
        raise
    except Exception:  # the parser raises bare Exceptions for syntax errors
        raise ParseError(f"cannot parse `{s[:60]}`") from None
    if isinstance(expr, sympy.MatrixBase):
        return Scalar(sympy.ImmutableMatrix(expr).applyfunc(_evaluated), unit)
    if not isinstance(expr, sympy.Expr):
        raise ParseError(f"not a single value: {type(expr).__name__}")
    return Scalar(_evaluated(expr), unit)


_I = sympy.Symbol("i")


def _evaluated(expr: sympy.Expr) -> sympy.Expr:
    """Evaluate what the parser left unevaluated; `i` is the imaginary unit, floats become exact."""
    expr = expr.doit()
    if _I in expr.free_symbols:
        expr = expr.subs(_I, sympy.I)
    if expr.has(sympy.Float):
        expr = expr.xreplace({f: sympy.Rational(str(f)) for f in expr.atoms(sympy.Float)})
    return expr


def parse_answer(cleaned: Cleaned) -> Node:
    """The node for a cleaned answer: text answers stay text, the rest is parsed as math."""
    if cleaned.words is not None:
        return Text(cleaned.words)
    return parse_latex(cleaned.latex)
