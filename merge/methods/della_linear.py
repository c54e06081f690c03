"""della_linear: DELLA's magnitude-ranked random drop and rescale, then task arithmetic.

    merged = base + lambda * sum_i w_i r_i (m_i * d_i)     [/ sum_i w_i when normalize is true]

with d_i = x_i - base, m_i DELLA's rank-dependent Bernoulli mask (see della.py: probability
density - epsilon for the smallest |d| of a row up to density + epsilon for the largest) and
r_i = |d_i|_1 / |m_i d_i|_1 when `rescale` is true (the default).

Parameters: per model `weight` (1.0), `density` (1.0), `epsilon` (0.15); global `lambda` (1.0),
`normalize` (false), `rescale` (true).
"""

from .della import Della


class DellaLinear(Della):
    name = "della_linear"
    consensus = False
    shared_params = {**Della.shared_params, "normalize": False}
