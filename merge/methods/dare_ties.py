"""dare_ties: DARE's random drop, then TIES' sign election (Yu et al., 2024).

1. Drop: each entry of d_i = x_i - base is kept with probability `density` (a Bernoulli mask
   drawn from a generator seeded by the config's seed, the tensor name and the model).
2. Rescale (`rescale: true`, the default): the kept vector is multiplied by
   |d_i|_1 / |kept d_i|_1, so its L1 norm is the original one. This is mergekit's rule; the DARE
   paper divides by `density`, which is the same factor in expectation (|kept|_1 ~ density |d|_1)
   and differs by O(1/sqrt(numel)) on real tensors.
3. Elect and merge as in ties (see ties.py), with `normalize` false by default.

Parameters: per model `weight` (1.0), `density` (1.0); global `lambda`, `normalize` (false),
`rescale` (true).
"""

from ._task_vectors import Sparsify, TaskVectorMethod


class DareTies(TaskVectorMethod):
    name = "dare_ties"
    sparsify = Sparsify.RANDOM
    consensus = True
    shared_params = {**TaskVectorMethod.shared_params, "rescale": True}
