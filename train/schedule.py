"""The learning-rate schedule of every training loop: linear warm-up, then cosine decay to zero."""
from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def cosine_warmup(optimizer: Optimizer, total_steps: int, warmup_steps: int) -> LambdaLR:
    """A LambdaLR scaling each group's learning rate at step s by
    min(1, (s + 1) / warmup_steps) * 0.5 * (1 + cos(pi * min(s, total_steps) / total_steps)):
    a linear ramp over the first `warmup_steps` steps times a cosine from 1 down to 0 at
    `total_steps` (and 0 after). Both counts must be >= 1."""
    if total_steps < 1 or warmup_steps < 1:
        raise ValueError(f"cosine_warmup needs total_steps and warmup_steps >= 1, got {total_steps}, {warmup_steps}")

    def scale(step: int) -> float:
        cosine = 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))
        return cosine * min(1.0, (step + 1) / warmup_steps)

    return LambdaLR(optimizer, scale)
