"""Array helpers shared by streams, batches and task modules: input checks and the softmax."""
from __future__ import annotations

from typing import Any

import numpy as np

from edgeinfer.errors import InputError


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax over the last axis."""
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=-1, keepdims=True))


def token_ids(x: Any, vocab: int) -> np.ndarray:
    """Token ids as int64, checked: integers, each 0 <= id < vocab."""
    arr = np.asarray(x)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"stream input must be token ids (integers), got {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= vocab):
        raise InputError(f"token id out of range; expected 0 <= id < {vocab}")
    return arr


__all__ = ["softmax", "token_ids"]
