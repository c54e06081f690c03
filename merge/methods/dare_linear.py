"""dare_linear: DARE's random drop and rescale, then task arithmetic (Yu et al., 2024).

    merged = base + lambda * sum_i w_i r_i (m_i * d_i)     [/ sum_i w_i when normalize is true]

with d_i = x_i - base, m_i a Bernoulli(`density`) mask seeded by the config's seed, the tensor
name and the model, and r_i = |d_i|_1 / |m_i d_i|_1 when `rescale` is true (the default; see
dare_ties.py for how this relates to the paper's 1 / density).

Parameters: per model `weight` (1.0), `density` (1.0); global `lambda`, `normalize` (false),
`rescale` (true).
"""

from ._task_vectors import Sparsify, TaskVectorMethod


class DareLinear(TaskVectorMethod):
    name = "dare_linear"
    sparsify = Sparsify.RANDOM
    shared_params = {**TaskVectorMethod.shared_params, "rescale": True}
