"""ties: trim, elect sign, disjoint merge (Yadav et al., 2023).

1. Trim: keep the k = max(1, int(density * numel)) largest |x_i - base| of each task vector,
   zero the rest (entries tied with the k-th largest are all kept).
2. Elect: s = sign(sum_i w_i d_i), +1 where the sum is 0.
3. Merge: only entries whose weighted sign agrees with s count:
       merged = base + lambda * sum_i w_i d_i [sign(w_i d_i) == s] / sum_i w_i [sign(w_i d_i) == s]
   (the divisor is 1 where no model agrees, and is left out when normalize is false).

Parameters: per model `weight` (1.0), `density` (1.0: no trimming); global `lambda` (1.0),
`normalize` (true), `rescale` (false; true scales each trimmed vector back to its L1 norm).
"""

from ._task_vectors import Sparsify, TaskVectorMethod


class Ties(TaskVectorMethod):
    name = "ties"
    sparsify = Sparsify.MAGNITUDE
    consensus = True
    shared_params = {**TaskVectorMethod.shared_params, "normalize": True}
