"""task_arithmetic: add the weighted task vectors to the base (Ilharco et al., 2023).

    merged = base + lambda * sum_i w_i (x_i - base)          (normalize: false, the default)
    merged = base + lambda * sum_i w_i (x_i - base) / sum_i w_i   (normalize: true)

Parameters: per model `weight` (default 1.0); global `lambda` (1.0), `normalize` (false).
"""

from ._task_vectors import TaskVectorMethod


class TaskArithmetic(TaskVectorMethod):
    name = "task_arithmetic"
