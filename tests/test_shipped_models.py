"""Accuracy floors of the shipped models on the real test sets (these need ../shared/data)."""
from __future__ import annotations

import numpy as np

from edgeinfer import Model
from edgeinfer.preprocess.image import normalize

DIGITS_FLOOR = 0.991  # the shipped int8 digits LSTM; fp32 reached >= 99.2%


def test_digits_accuracy_on_all_10000_mnist_test_images(mnist_test) -> None:
    images, labels = mnist_test
    model = Model("digits")
    x = normalize(images.astype(np.float32) / 255.0, model.spec.input)
    predicted = np.concatenate([model.predict(x[i : i + 2000]).argmax(1) for i in range(0, len(x), 2000)])
    accuracy = float((predicted == labels).mean())
    assert accuracy >= DIGITS_FLOOR
    assert abs(accuracy - model.spec.metrics["test_accuracy"]) < 1e-9  # as measured at export
    assert model.spec.metrics["fp32_test_accuracy"] >= 0.992
    assert model.spec.metrics["fp32_test_accuracy"] - accuracy <= 0.002
