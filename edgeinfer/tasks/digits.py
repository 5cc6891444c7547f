"""Digits (feature-sequence models): whole-sequence logits, and anytime early exit.

`predict_logits` runs whole sequences (B, T, F) through the sequence graph. `early_exit` reads
them step by step and stops each sequence at the first step whose top probability reaches a
threshold (the probabilities after every step come from `Stream.step`, the same mechanism that
gives the sentiment's running probability per word).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeinfer.arrays import brief, float_features, shape_of, token_ids
from edgeinfer.core import LoadedModel
from edgeinfer.errors import InputError
from edgeinfer.spec import CharInput, TextInput
from edgeinfer.stream import Stream


@dataclass(frozen=True)
class AnytimeResult:
    """Where each sequence stopped and what it said there."""

    probabilities: np.ndarray  # (B, C) at the step each sequence stopped
    steps: np.ndarray  # (B,) steps read, 1..T
    total_steps: int  # T, the steps a full read takes
    names: tuple[str, ...] = ()  # the model's class labels

    @property
    def label_ids(self) -> np.ndarray:
        """The index of each sequence's most likely class. # (B,)"""
        ids: np.ndarray = self.probabilities.argmax(axis=1)
        return ids

    @property
    def labels(self) -> list[str]:
        """The most likely class of each sequence, by name (its index: `label_ids`)."""
        return [self.names[i] for i in self.label_ids] if self.names else [str(i) for i in self.label_ids]


def feature_sequences(model: LoadedModel, x: Any) -> tuple[np.ndarray, bool]:
    """x (B, T, F) or (T, F) as float32 (B, T, F), checked against the spec; True when one was given."""
    if isinstance(model.spec.input, TextInput):
        raise InputError(f"{model.source}: a text model; call predict(texts) with a list of strings")
    if isinstance(model.spec.input, CharInput):
        raise InputError(f"{model.source}: a characters model; use edgeinfer.generate / edgeinfer.score "
                         "or model.stream() with character ids")
    features = model.spec.input_size
    arr = float_features(x)
    single = arr.ndim == 2
    if single:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[2] != features or arr.shape[1] == 0 or arr.shape[0] == 0:
        raise InputError(f"{model.source}: input has shape {shape_of(x)}; "
                         f"expected (B, T, {features}) or (T, {features}), T >= 1")
    return arr, single


def token_sequences(model: LoadedModel, x: Any) -> tuple[np.ndarray, bool]:
    """Token ids x (B, T) or (T,) as int64 (B, T), each below the vocabulary's size; True when one was given."""
    vocab = model.spec.token_vocab
    assert vocab is not None
    arr = token_ids(x, vocab.vocab_size)
    single = arr.ndim == 1
    if single:
        arr = arr[None]
    if arr.ndim != 2 or 0 in arr.shape:
        raise InputError(f"{model.source}: token ids of shape {shape_of(x)}; expected (B, T) or (T,), T >= 1")
    return arr, single


def predict_logits(model: LoadedModel, x: Any) -> np.ndarray:
    """The graph's output for whole sequences x (B, T, F) or (T, F), or token ids (B, T) or (T,),
    every row read whole. # (B, C) or (C,); a model that answers every step: (B, T, C) or (T, C)"""
    if model.spec.reads_tokens:
        ids, single = token_sequences(model, x)
        out = model.sequence_logits(ids, np.full(len(ids), ids.shape[1], np.int64))
        return out[0] if single else out
    arr, single = feature_sequences(model, x)
    logits = model.sequence_logits(arr)
    return logits[0] if single else logits


def early_exit(model: LoadedModel, x: Any, threshold: float) -> AnytimeResult:
    """Step sequences x (B, T, F) or (T, F) until each one's top probability reaches `threshold`.

    Sequences that never reach it read all T steps. A threshold of 1.0 or more reads everything
    (the result then equals `predict`, within float rounding). Stepping stops as soon as every
    sequence has stopped.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 < float(threshold) < math.inf:
        raise InputError(f"early-exit threshold must be a probability in (0, 1], got {brief(threshold)}")
    if not model.spec.gives_classes:
        raise InputError(f"{model.source}: early exit needs class probabilities; this model gives values")
    arr, _ = feature_sequences(model, x)
    batch, total = arr.shape[0], arr.shape[1]
    stream = Stream(model, batch)
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
    return AnytimeResult(probs, steps, total, model.spec.labels)


__all__ = ["AnytimeResult", "early_exit", "feature_sequences", "predict_logits", "token_sequences"]
