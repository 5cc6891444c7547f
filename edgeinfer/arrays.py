"""Array helpers shared by streams, batches and task modules: input checks and the softmax."""
from __future__ import annotations

from array import array
from operator import sub, truediv
from typing import Any

import numpy as np

from edgeinfer.errors import InputError


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax over the last axis."""
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=-1, keepdims=True))


def brief(value: Any, width: int = 60) -> str:
    """A value described on one short line, for messages: arrays by shape and dtype."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} ({value.dtype})"
    text = repr(value)
    text = text if len(text) <= width else text[: width - 3] + "..."
    return text.encode("unicode_escape").decode("ascii")


def shape_of(x: Any) -> str:
    """The shape of an input, for messages; never raises."""
    try:
        return str(tuple(np.shape(x)))
    except Exception:  # ragged nesting and odd objects have no shape
        return f"(not an array: {type(x).__name__})"


def float_features(x: Any) -> np.ndarray:
    """An input as a float32 array, checked to be numbers and finite; InputError otherwise."""
    if isinstance(x, (str, bytes, dict)):
        raise InputError(f"expected numbers (a float32 array), got {type(x).__name__}")
    try:
        arr = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"expected numbers (a float32 array), got {type(x).__name__} of shape {shape_of(x)}") from None
    check_finite(arr)
    return arr


NOT_FINITE = "input holds NaN or infinite values; expected finite numbers"


def normalised_row(row: list[float], mean: list[float], std: list[float]) -> array[float]:
    """(row - mean) / std of float32 values held as Python floats, as float32: bit for bit what
    numpy's float32 subtract then divide give. Each operation is done in double precision and
    rounded to float32 once (by `array("f")`); a double holds 53 bits, at least 2 x 24 + 2, so the
    double rounding is innocuous and the result is the correctly rounded float32 one."""
    return array("f", map(truediv, array("f", map(sub, row, mean)), std))  # the three of equal length


def check_finite(arr: np.ndarray) -> None:
    """InputError unless every value of a float array is finite."""
    if not np.isfinite(arr).all():
        raise InputError(NOT_FINITE)


def token_ids(x: Any, vocab: int) -> np.ndarray:
    """Token ids as int64, checked: integers, each 0 <= id < vocab."""
    if isinstance(x, (str, bytes, dict)):
        raise InputError(f"stream input must be token ids (integers), got {type(x).__name__}")
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"stream input must be token ids (integers), got {type(x).__name__}") from None
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"stream input must be token ids (integers), got {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= vocab):
        raise InputError(f"token id out of range; expected 0 <= id < {vocab}")
    return arr


__all__ = ["brief", "check_finite", "float_features", "shape_of", "softmax", "token_ids"]
