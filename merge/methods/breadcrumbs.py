"""breadcrumbs: task arithmetic over task vectors with both tails cut (Davari & Belilovsky, 2023,
"Model Breadcrumbs").

Per non-base model, with d = x - base over n entries sorted by |d|:

    top = int(gamma * n),  keep = int(density * n),  bottom = max(0, n - keep - top)
    d' = d on the entries whose ascending |d| rank is in [bottom, bottom + keep), else 0

so the `gamma` share of largest (outlier) entries and the smallest ones are dropped, and
`density` of the entries survive (fewer outliers are dropped when density needs them). Then

    merged = base + lambda * sum_i w_i d'_i          [/ sum_i w_i when normalize is true]

Parameters: per model `weight` (1.0), `density` (1.0: nothing is cut, gamma included), `gamma`
(0.01); global `lambda` (1.0), `normalize` (false), `rescale` (false; true scales each cut vector
back to its L1 norm). Entries tied in |d| at a boundary are all kept.
"""

from ._task_vectors import Sparsify, TaskVectorMethod


class Breadcrumbs(TaskVectorMethod):
    name = "breadcrumbs"
    sparsify = Sparsify.OUTLIERS
    model_params = {**TaskVectorMethod.model_params, "gamma": 0.01}
