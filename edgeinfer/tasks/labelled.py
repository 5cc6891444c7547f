"""Labelled answers for what the user has: image files or pixels, texts, feature sequences.

`classify` takes one input or a list of them and returns one `Answer` per input, in order: the
label, its probability, every label's probability and the flags that make an answer doubtful.
The array-level calls (`Model.predict`, `Model.early_exit`) stay for those who want arrays.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from edgeinfer.answers import Answer, answers_from
from edgeinfer.arrays import brief
from edgeinfer.core import LoadedModel
from edgeinfer.errors import InputError
from edgeinfer.spec import CharInput, ImageInput, TextInput
from edgeinfer.tasks.digits import early_exit, predict_logits
from edgeinfer.tasks.sentiment import check_texts, classify_texts, text_chunks

BATCH_IMAGES = 256  # images preprocessed and predicted together


def classify(model: LoadedModel, inputs: Any, early_exit_at: float | None = None) -> list[Answer]:
    """One answer per input, in order.

    Image models take image files (paths), their bytes, Pillow images or pixel arrays; text
    models take texts; feature models take sequences (T, F), a list of them (lengths may
    differ) or an array (B, T, F). One input or a list of them; always a list of answers.
    `early_exit_at`: stop reading each input once its top probability reaches this (image and
    feature models; `Answer.steps` says how many steps were read).
    """
    spec = model.spec
    if not spec.gives_classes:
        raise InputError(f"{model.source}: this model gives values ({', '.join(spec.labels)}), not classes; "
                         "use predict() for its values")
    if spec.per_step:
        raise InputError(f"{model.source}: this model answers every step; use predict() or a stream")
    if isinstance(spec.input, CharInput):
        raise InputError(f"{model.source}: a characters model; use edgeinfer.generate / edgeinfer.score")
    if isinstance(spec.input, TextInput):
        if early_exit_at is not None:
            raise InputError("early exit reads feature sequences and images; a text is read whole")
        return _texts(model, inputs)
    if isinstance(spec.input, ImageInput):
        return _images(model, spec.input, inputs, early_exit_at)
    return _sequences(model, inputs, early_exit_at)


def _run(model: LoadedModel, x: np.ndarray, early_exit_at: float | None) -> tuple[np.ndarray, list[int] | None]:
    if early_exit_at is None:
        return model.spec.answers(predict_logits(model, x)), None
    got = early_exit(model, x, early_exit_at)
    return got.probabilities, [int(n) for n in got.steps]


def _images(model: LoadedModel, spec: ImageInput, inputs: Any, early_exit_at: float | None) -> list[Answer]:
    from edgeinfer.preprocess.image import normalize, read_digit  # Pillow only when images are read

    single = isinstance(inputs, (str, os.PathLike, bytes, bytearray, memoryview)) or (
        isinstance(inputs, np.ndarray) and inputs.dtype != object) or type(inputs).__module__.startswith("PIL.")
    items = [inputs] if single else _listed(inputs, "images")
    out: list[Answer] = []
    for start in range(0, len(items), BATCH_IMAGES):
        frames, sources, flags = [], [], []
        for i, item in enumerate(items[start : start + BATCH_IMAGES], start):
            name = str(item) if isinstance(item, (str, os.PathLike)) else f"image {i}"
            got = read_digit(item, spec, name)
            frames.append(normalize(got.frame, spec))
            sources.append(name)
            flags.append(("unclear",) if got.unclear else ())
        probs, steps = _run(model, np.stack(frames), early_exit_at)
        out += answers_from(probs, model.spec.labels, sources, flags, steps)
    return out


def _texts(model: LoadedModel, inputs: Any) -> list[Answer]:
    texts = [inputs] if isinstance(inputs, str) else _listed(inputs, "texts")
    check_texts(texts)
    out: list[Answer] = []
    for start, end in text_chunks(texts):
        got = classify_texts(model, texts[start:end])
        if got.errors:
            raise InputError(f"text {start + min(got.errors)} is empty or has no words; expected at least one word")
        low = got.low_coverage
        flags = [("low_coverage",) if low[k] else () for k in range(end - start)]
        out += answers_from(got.probabilities, model.spec.labels, [f"text {i}" for i in range(start, end)], flags)
    return out


def _sequences(model: LoadedModel, inputs: Any, early_exit_at: float | None) -> list[Answer]:
    if isinstance(inputs, np.ndarray) and inputs.dtype != object and inputs.ndim in (2, 3):
        seqs = [inputs] if inputs.ndim == 2 else list(inputs)
    else:
        seqs = _listed(inputs, "feature sequences")
    out: list[Answer | None] = [None] * len(seqs)
    by_length: dict[int, list[int]] = {}
    arrays = []
    for i, seq in enumerate(seqs):
        try:
            arr = np.asarray(seq, dtype=np.float32) if not isinstance(seq, np.ndarray) else seq
        except (TypeError, ValueError):
            raise InputError(f"sequence {i} is not a (T, {model.spec.input_size}) array of numbers") from None
        if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] != model.spec.input_size:
            raise InputError(f"sequence {i} has shape {arr.shape}; expected (T, {model.spec.input_size}), T >= 1")
        arrays.append(arr)
        by_length.setdefault(arr.shape[0], []).append(i)
    for rows in by_length.values():
        probs, steps = _run(model, np.stack([arrays[i] for i in rows]), early_exit_at)
        for k, answer in enumerate(answers_from(probs, model.spec.labels, [f"sequence {i}" for i in rows],
                                                None, steps)):
            out[rows[k]] = answer
    return [a for a in out if a is not None]


def _listed(inputs: Any, what: str) -> list[Any]:
    if isinstance(inputs, (list, tuple)):
        if not inputs:
            raise InputError(f"no {what} given; expected at least one")
        return list(inputs)
    if isinstance(inputs, Sequence) or hasattr(inputs, "__iter__"):
        items = list(inputs)
        if items:
            return items
    raise InputError(f"expected {what} (one, or a list), got {brief(inputs)}")


__all__ = ["classify"]
