"""Anytime results: a classification read step by step, stopped once it is confident enough.

The probabilities after every step come from `Stream.trace` (the same mechanism gives the
sentiment's running probability per word); `early_exit` stops each sequence at the first step
whose top probability reaches a threshold.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeinfer.errors import InputError

if TYPE_CHECKING:
    from edgeinfer.model import Model


@dataclass(frozen=True)
class AnytimeResult:
    """Where each sequence stopped and what it said there."""

    probabilities: np.ndarray  # (B, C) at the step each sequence stopped
    steps: np.ndarray  # (B,) steps read, 1..T
    total_steps: int  # T, the steps a full read takes

    @property
    def labels(self) -> np.ndarray:
        """The most likely class of each sequence. # (B,)"""
        return self.probabilities.argmax(axis=1)


def early_exit(model: "Model", x: Any, threshold: float) -> AnytimeResult:
    """Step sequences x (B, T, F) or (T, F) until each one's top probability reaches `threshold`.

    Sequences that never reach it read all T steps. A threshold of 1.0 or more reads everything
    (the result then equals `predict`, within float rounding). Stepping stops as soon as every
    sequence has stopped.
    """
    if not 0.0 < threshold or not np.isfinite(threshold):
        raise InputError(f"early-exit threshold must be a probability in (0, 1], got {threshold}")
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[0] == 0 or arr.shape[1] == 0 or arr.shape[2] != model.spec.input_size:
        raise InputError(f"input has shape {np.shape(x)}; expected (B, T, {model.spec.input_size}) "
                         f"or (T, {model.spec.input_size}), T >= 1")
    batch, total = arr.shape[0], arr.shape[1]
    stream = model.stream(batch)
    probs = np.zeros((batch, model.spec.classes), np.float32)
    steps = np.zeros(batch, np.int64)
    running = np.ones(batch, bool)
    for t in range(total):
        p = stream.step(arr[:, t])
        stop = running & ((p.max(axis=1) >= threshold) | (t == total - 1))
        probs[stop], steps[stop] = p[stop], t + 1
        running &= ~stop
        if not running.any():
            break
    return AnytimeResult(probs, steps, total)


__all__ = ["AnytimeResult", "early_exit"]
