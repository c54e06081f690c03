"""Learning-rate schedules: the multiplier of the peak learning rate at each optimizer step.

Every schedule warms up linearly over the first ceil(warmup_ratio x total) steps, then:

    cosine                 half a cosine from 1 down to min_lr_ratio at the last step
    constant_with_warmup   stays at 1 (the Hugging Face name, which TinyR1 used for math and code)
    constant               the same shape (our older name; the warmup is always warmup_ratio's)
"""

from __future__ import annotations

import math

SCHEDULES = ("cosine", "constant_with_warmup", "constant")


def warmup_steps(total: int, warmup_ratio: float) -> int:
    return math.ceil(warmup_ratio * total)


def lr_factor(step: int, total: int, schedule: str, warmup_ratio: float, min_lr_ratio: float = 0.0) -> float:
    """Multiplier of the peak learning rate at optimizer step `step` (0-based) of `total`."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; known: {', '.join(SCHEDULES)}")
    warmup = warmup_steps(total, warmup_ratio)
    if step < warmup:
        return (step + 1) / warmup
    if schedule != "cosine":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
