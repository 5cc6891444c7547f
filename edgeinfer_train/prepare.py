"""Training data made ready: inputs combined, checked before training starts, split for validation,
normalised by statistics of the training split."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgeinfer_train.data import DataError, Sequences

MIN_STD = 1e-6  # a constant feature is left as it is (std 1), not divided by ~0


def combine(parts: Sequence[Sequences]) -> Sequences:
    """Several inputs as one set: the labels' union (sorted), the same features everywhere."""
    if not parts:
        raise DataError("no training data; give at least one file or folder")
    widths = {s.x[0].shape[1] for s in parts if s.x}
    if len(widths) > 1:
        raise DataError(f"the inputs have {sorted(widths)} features per step; every input needs the same")
    names = sorted({lab for s in parts for lab in s.labels})
    x = [a for s in parts for a in s.x]
    y = np.concatenate([np.array([names.index(s.labels[i]) for i in s.y], np.int64) for s in parts])
    features = next((s.features for s in parts if s.features), ())
    return Sequences(x, y, tuple(names), features, [w for s in parts for w in s.where])


def check(train: Sequences, test: Sequences | None = None) -> None:
    """DataError (one line) for data no classifier can learn from or be judged on."""
    if len(train) == 0:
        raise DataError("no training sequences")
    width = train.x[0].shape[1]
    for s, where in zip(train.x, train.where or [""] * len(train), strict=True):
        if s.shape[0] < 2:
            raise DataError(f"{where or 'a sequence'}: a sequence of {s.shape[0]} step; a streaming classifier needs "
                            "at least 2 steps per sequence")
        if s.shape[1] != width:
            raise DataError(f"{where}: {s.shape[1]} features per step; the others have {width}")
    present = np.bincount(train.y, minlength=len(train.labels))
    if (present > 0).sum() < 2:
        only = train.labels[int(np.argmax(present))]
        raise DataError(f"the training data holds one class ({only!r}); a classifier needs at least two")
    missing = [lab for lab, n in zip(train.labels, present, strict=True) if n == 0]
    if missing:
        raise DataError(f"no training sequence is labelled {missing[0]!r}")
    if test is not None:
        if len(test) == 0:
            raise DataError("the test data holds no sequences")
        if test.x[0].shape[1] != width:
            raise DataError(f"the test data has {test.x[0].shape[1]} features per step; training has {width}")
        unseen = sorted(set(test.labels[i] for i in test.y) - set(train.labels))
        if unseen:
            raise DataError(f"label {unseen[0]!r} appears only in the test data; the model cannot learn it")


def relabel(test: Sequences, labels: tuple[str, ...]) -> Sequences:
    """Test sequences with their labels indexed like the training set's `labels`."""
    y = np.array([labels.index(test.labels[i]) for i in test.y], np.int64)
    return Sequences(test.x, y, labels, test.features, test.where)


def split(data: Sequences, fraction: float, seed: int) -> tuple[Sequences, Sequences]:
    """(train, validation): `fraction` of each class held out (at least one where the class has 2+)."""
    if not 0.0 < fraction < 1.0:
        raise DataError(f"--val-fraction {fraction}; expected a share between 0 and 1")
    rng = np.random.default_rng(seed)
    held: list[int] = []
    for k in range(len(data.labels)):
        idx = np.flatnonzero(data.y == k)
        rng.shuffle(idx)
        n = round(len(idx) * fraction) if len(idx) > 1 else 0
        held += idx[: max(n, 1 if len(idx) > 1 else 0)].tolist()
    keep = sorted(set(range(len(data))) - set(held))
    if not held:
        raise DataError("too few sequences to hold any out for validation; give --val data or more sequences")
    return data.subset(keep), data.subset(sorted(held))


def normalisation(data: Sequences) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std over every step of `data`. # (F,), (F,)"""
    steps = np.concatenate(data.x).astype(np.float64)
    mean, std = steps.mean(0), steps.std(0)
    std = np.where(std < MIN_STD, 1.0, std)
    return mean.astype(np.float32), std.astype(np.float32)


def padded(x: list[np.ndarray], mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalised sequences right-padded with zeros, and their lengths. # (N, T, F), (N,)"""
    lengths = np.array([len(s) for s in x], np.int64)
    out = np.zeros((len(x), int(lengths.max()), x[0].shape[1]), np.float32)
    for i, s in enumerate(x):
        out[i, : len(s)] = (s - mean) / std
    return out, lengths


__all__ = ["check", "combine", "normalisation", "padded", "relabel", "split"]
