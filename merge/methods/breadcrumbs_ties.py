"""breadcrumbs_ties: breadcrumbs' two-tailed cut, then TIES' sign election and disjoint merge.

Each task vector is cut as in breadcrumbs.py (drop the `gamma` share of largest |d| and the
smallest, keep `density`); then, with s = sign(sum_i w_i d'_i) (+1 where it is 0),

    merged = base + lambda * sum_i w_i d'_i [sign(w_i d'_i) == s] / D

with D = sum_i w_i [sign(w_i d'_i) == s] (1 where no model agrees) when normalize is true, else 1.

Parameters: per model `weight` (1.0), `density` (1.0), `gamma` (0.01); global `lambda` (1.0),
`normalize` (false), `rescale` (false).
"""

from ._task_vectors import Sparsify, TaskVectorMethod


class BreadcrumbsTies(TaskVectorMethod):
    name = "breadcrumbs_ties"
    sparsify = Sparsify.OUTLIERS
    consensus = True
    model_params = {**TaskVectorMethod.model_params, "gamma": 0.01}
