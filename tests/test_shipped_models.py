"""Accuracy floors of the shipped models on the real test sets (these need ../shared/data).

Runtime only (no torch, no train/): the data is read by tests/datasets.py."""
from __future__ import annotations

import numpy as np
import pytest

from edgeinfer import Model
from edgeinfer.preprocess.image import normalize
from tests import datasets

DIGITS_FLOOR = 0.991  # the shipped int8 digits LSTM; fp32 reached >= 99.2%
# int8 kernels differ between CPUs (AVX2 vs AVX-512 VNNI): the int8 LSTM read 99.25% where it was
# exported (AVX2) and 99.28% on an AVX-512 VNNI machine, so the export's figure is matched within
# a few examples, not exactly
EXPORT_MATCH = 0.001


def test_digits_accuracy_on_all_10000_mnist_test_images(mnist_test) -> None:
    images, labels = mnist_test
    model = Model("digits")
    x = normalize(images.astype(np.float32) / 255.0, model.spec.input)
    # batches of 250 as at export: an int8 LSTM quantizes each step with one scale per batch
    predicted = np.concatenate([model.predict(x[i : i + 250]).argmax(1) for i in range(0, len(x), 250)])
    accuracy = float((predicted == labels).mean())
    assert accuracy >= DIGITS_FLOOR
    assert abs(accuracy - model.spec.metrics["test_accuracy"]) <= EXPORT_MATCH  # as measured at export
    assert model.spec.metrics["fp32_test_accuracy"] >= 0.992
    assert model.spec.metrics["fp32_test_accuracy"] - accuracy <= 0.002


SENTIMENT_FLOOR = 0.915  # issue 3: the shipped model reaches >= 92%; the test fails below 91.5%


def test_sentiment_accuracy_on_all_25000_imdb_test_reviews(imdb_test) -> None:
    texts, labels = imdb_test
    model = Model("sentiment")
    probs = model.predict(texts)  # every review read whole
    accuracy = float((probs.argmax(1) == labels).mean())
    assert accuracy >= SENTIMENT_FLOOR
    assert abs(accuracy - model.spec.metrics["test_accuracy"]) <= EXPORT_MATCH  # as measured at export
    assert model.spec.metrics["test_reviews"] == 25000
    assert model.spec.metrics["fp32_test_accuracy"] - accuracy <= 0.005  # int8 within 0.5 points
    assert model.path.stat().st_size <= 5_000_000


# the tokenizer's agreement with training on every test review: tests/train/test_shipped_tokens.py


CHARACTERS_CEILING = 1.45  # nats/char (issue 4); the shipped int8 2-layer LSTM-512 reads 1.4372 in one stream


def test_characters_validation_loss_through_onnx() -> None:
    """The shipped characters model on the last 10% of Tiny Shakespeare, scored through ONNX."""
    from edgeinfer import score
    path = datasets.data_dir() / "text" / "tinyshakespeare.txt"
    if not path.is_file():
        pytest.fail(f"real data needed: {path} is missing")
    text = path.read_text(encoding="utf-8")
    model = Model("characters")
    val = text[int(len(text) * 0.9):]
    nats = score(model, val)  # one stream over all 111,540 validation characters (~25 s)
    assert nats <= CHARACTERS_CEILING
    assert model.spec.metrics["val_loss"] <= CHARACTERS_CEILING
    assert model.spec.metrics["val_loss"] - model.spec.metrics["fp32_val_loss"] <= 0.03
    assert model.spec.metrics["val_chars"] == len(val) and model.path.stat().st_size <= 4_000_000
