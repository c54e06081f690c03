"""LaTeX in the report, rendered without network: a small converter from the math that traces
use (fractions, roots, scripts, boxes, Greek letters, common operators) to MathML, which the
browser draws itself. A formula it cannot parse stays as its source text."""

from __future__ import annotations

import re
from html import escape

_LOWER = (
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho varsigma sigma"
)
_LOWER += " tau upsilon phi chi psi omega"
_UPPER = "Alpha Beta Gamma Delta Epsilon Zeta Eta Theta Iota Kappa Lambda Mu Nu Xi Omicron Pi Rho - Sigma Tau"
_UPPER += " Upsilon Phi Chi Psi Omega"
SYMBOLS = {name: chr(0x3B1 + i) for i, name in enumerate(_LOWER.split())}
SYMBOLS |= {name: chr(0x391 + i) for i, name in enumerate(_UPPER.split()) if name != "-"}
SYMBOLS |= {"varepsilon": "ε", "varphi": "φ", "vartheta": "ϑ", "infty": "∞", "partial": "∂", "nabla": "∇"}
OPERATORS = {
    "cdot": "⋅",
    "times": "×",
    "div": "÷",
    "pm": "±",
    "mp": "∓",
    "le": "≤",
    "leq": "≤",
    "ge": "≥",
    "geq": "≥",
    "ne": "≠",
    "neq": "≠",
    "approx": "≈",
    "equiv": "≡",
    "sim": "∼",
    "to": "→",
    "rightarrow": "→",
    "Rightarrow": "⇒",
    "leftarrow": "←",
    "iff": "⇔",
    "implies": "⇒",
    "in": "∈",
    "notin": "∉",
    "subset": "⊂",
    "subseteq": "⊆",
    "cup": "∪",
    "cap": "∩",
    "sum": "∑",
    "prod": "∏",
    "int": "∫",
    "cdots": "⋯",
    "ldots": "…",
    "dots": "…",
    "circ": "∘",
    "angle": "∠",
    "perp": "⊥",
    "mid": "∣",
    "lfloor": "⌊",
    "rfloor": "⌋",
    "lceil": "⌈",
    "rceil": "⌉",
    "langle": "⟨",
    "rangle": "⟩",
    "{": "{",
    "}": "}",
    "|": "‖",
    "%": "%",
    "$": "$",
    "#": "#",
    "&": "&",
    "_": "_",
}
FUNCTIONS = {"sin", "cos", "tan", "cot", "sec", "csc", "log", "ln", "exp", "lim", "max", "min", "gcd", "det"}
SPACES = {",", ";", ":", "!", "quad", "qquad", " "}
TEXT_COMMANDS = {"text", "mathrm", "textbf", "mathbf", "operatorname", "textit", "mathit", "mbox"}
FRACTIONS = {"frac", "dfrac", "tfrac"}
IGNORED = {"displaystyle", "left", "right", "big", "Big", "bigg", "Bigg", "limits", "nolimits"}

_TOKEN = re.compile(r"\\[a-zA-Z]+|\\.|[0-9]+(?:\.[0-9]+)?|\s+|.", re.S)
MATH = re.compile(r"\$\$(.+?)\$\$|\$([^$\n]+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", re.S)


class _Parser:
    def __init__(self, source: str):
        self.tokens = _TOKEN.findall(source)
        self.i = 0

    def _skip_space(self) -> None:
        while self.i < len(self.tokens) and self.tokens[self.i].isspace():
            self.i += 1

    def peek(self) -> str | None:
        self._skip_space()
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> str:
        if self.peek() is None:
            raise ValueError("unexpected end")
        self.i += 1
        return self.tokens[self.i - 1]

    def row(self, until: str | None = None) -> str:
        parts = []
        while self.peek() is not None and self.peek() != until:
            parts.append(self.scripted())
        if until is not None:
            self.take()
        return f"<mrow>{''.join(parts)}</mrow>"

    def argument(self) -> str:
        """A command's argument or a script: a {group}, else one atom (`x^2_i` is x, ^2, _i)."""
        return self.row("}") if self.take_if("{") else self.atom()

    def take_if(self, token: str) -> bool:
        if self.peek() == token:
            self.i += 1
            return True
        return False

    def raw_group(self) -> str:
        """The source text of a {...} group, spaces kept (for \\text), braces balanced."""
        if not self.take_if("{"):
            return self.take()
        depth, out = 1, []
        while self.i < len(self.tokens):
            token = self.tokens[self.i]
            self.i += 1
            depth += token == "{"
            depth -= token == "}"
            if depth == 0:
                return "".join(out)
            out.append(token)
        raise ValueError("unbalanced braces")

    def scripted(self) -> str:
        base = self.atom()
        sub = sup = None
        while self.peek() in ("^", "_"):
            if self.take() == "^":
                sup = self.argument()
            else:
                sub = self.argument()
        if sub and sup:
            return f"<msubsup>{base}{sub}{sup}</msubsup>"
        if sup:
            return f"<msup>{base}{sup}</msup>"
        if sub:
            return f"<msub>{base}{sub}</msub>"
        return base

    def atom(self) -> str:
        token = self.take()
        if token == "{":
            return self.row("}")
        if token[0].isdigit():
            return f"<mn>{token}</mn>"
        if token.isalpha():
            return f"<mi>{escape(token)}</mi>"
        if not token.startswith("\\"):
            return f"<mo>{escape(token)}</mo>"
        name = token[1:]
        if name in FRACTIONS:
            return f"<mfrac>{self.argument()}{self.argument()}</mfrac>"
        if name == "sqrt":
            if self.take_if("["):
                index = self.row("]")
                return f"<mroot>{self.argument()}{index}</mroot>"
            return f"<msqrt>{self.argument()}</msqrt>"
        if name == "boxed":
            return f'<mrow style="border: 1px solid #444; padding: 1px 3px">{self.argument()}</mrow>'
        if name in TEXT_COMMANDS:
            return f"<mtext>{escape(self.raw_group())}</mtext>"
        if name in IGNORED:
            if name in ("left", "right"):
                self.take_if(".")  # \left. is an invisible delimiter
            return "<mrow></mrow>"
        if name in SPACES:
            return '<mspace width="0.25em"></mspace>'
        if name in SYMBOLS:
            return f"<mi>{SYMBOLS[name]}</mi>"
        if name in OPERATORS:
            return f"<mo>{escape(OPERATORS[name])}</mo>"
        if name in FUNCTIONS:
            return f"<mi>{name}</mi>"
        if name == "\\":
            return '<mspace width="1em"></mspace>'
        return f"<mtext>{escape(token)}</mtext>"


def to_mathml(source: str, display: bool = False) -> str:
    """MathML for one formula (without its $ delimiters); ValueError if it does not parse."""
    parser = _Parser(source)
    body = parser.row()
    mode = ' display="block"' if display else ""
    return f'<math{mode}><semantics>{body}<annotation encoding="application/x-tex">{escape(source)}</annotation></semantics></math>'


def render(text: str) -> str:
    """`text` as HTML: prose escaped, each $...$, $$...$$, \\(...\\) or \\[...\\] formula as MathML
    (left as source text when it does not parse)."""
    out, last = [], 0
    for found in MATH.finditer(text):
        out.append(escape(text[last : found.start()]))
        source = next(g for g in found.groups() if g is not None)
        display = found.group(1) is not None or found.group(4) is not None
        try:
            out.append(to_mathml(source, display))
        except (ValueError, IndexError):
            out.append(escape(found.group(0)))
        last = found.end()
    out.append(escape(text[last:]))
    return "".join(out)
