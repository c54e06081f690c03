"""Imported by the worker forkserver (never by the parent): warms the parser before workers fork.

latex2sympy2_extended's ANTLR parser builds its prediction tables lazily, so the first answers
of each shape take 10-500 ms to parse and later ones about 1 ms. Parsing a sample of common
answer shapes once here, before the forkserver forks workers, gives every worker (and every
replacement of a killed one) the warm tables for free.
"""

from curate.verify.math.check import check_outcome

SAMPLE = (
    r"\frac{\sqrt{3}}{2}",
    r"3\sqrt{13}",
    r"-\frac{\pi}{6}",
    r"2\pi r^2",
    r"6 - 5i",
    r"x^3+3x-6",
    r"(a+5)(b+2)",
    r"\frac{11+9a}{20}",
    r"\cot x",
    r"\sin^2 x + \cos 2x",
    r"\log_2 8",
    r"e^{-2}",
    r"y = 2x + 3",
    r"5x - 7y + 11z + 4 = 0",
    r"x \le 3",
    r"\left[ \frac{\pi^2}{8}, 2 \right)",
    r"(3, \frac{\pi}{2})",
    r"\begin{pmatrix} 1 & -2 \\ 3 & \frac{1}{2} \end{pmatrix}",
    r"|x - 1|",
    r"\binom{10}{3}",
    r"5!",
    r"\sqrt[3]{2}",
    r"1 \pm \sqrt{19}",
    r"\frac{1}{2}x^2 - 3x",
    r"2^{10} - 1",
)

for _answer in SAMPLE:
    check_outcome("\\boxed{" + _answer + "}", _answer)
