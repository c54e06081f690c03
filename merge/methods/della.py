"""della: magnitude-ranked random drop, then TIES' sign election (Deep et al., 2024, "DELLA-Merging").

1. Drop: in each row (along the last dimension; a 1-D tensor is one row) of d_i = x_i - base,
   rank the entries by |d| (r = 0 for the smallest, n - 1 for the largest) and keep each with
   probability
       p = density - epsilon + 2 * epsilon * r / (n - 1)
   (a Bernoulli draw from a generator seeded by the config's seed, the tensor name and the model),
   so larger changes survive more often and density of them survive on average.
2. Rescale (`rescale: true`, the default): the kept vector is multiplied by |d_i|_1 / |kept d_i|_1,
   mergekit's rule (the paper divides each entry by its own p; both keep the L1 norm in expectation).
3. Elect and merge as in ties (see ties.py), with `normalize` true by default.

Parameters: per model `weight` (1.0), `density` (1.0), `epsilon` (0.15; density +- epsilon must lie
in (0, 1)); global `lambda` (1.0), `normalize` (true), `rescale` (true).
"""

from typing import Any

from ._task_vectors import Sparsify, TaskVectorMethod


class Della(TaskVectorMethod):
    name = "della"
    sparsify = Sparsify.RANKED
    consensus = True
    shared_params = {**TaskVectorMethod.shared_params, "normalize": True, "rescale": True}
    model_params = {**TaskVectorMethod.model_params, "epsilon": 0.15}

    def check_parameters(self, params: dict[str, Any], model_params: list[dict[str, Any]]) -> str | None:
        for values in model_params:
            density, epsilon = values.get("density", 1.0), values.get("epsilon", 0.0)
            if density < 1 and not (0 < density - epsilon and density + epsilon < 1):
                return (
                    f"{self.name}: density {density:g} +- epsilon {epsilon:g} must lie inside (0, 1); "
                    "lower epsilon"
                )
        return None
