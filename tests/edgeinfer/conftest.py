"""The runtime's fixtures: the committed tiny models of tests/fixtures/ (no torch, onnx, train, export)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixtures import CHARACTERS, REBUILD, SENTIMENT, digits_name, fixture_path, sentiment_name


def committed(name: str) -> Path:
    """The committed fixture model `name`; fails (never skips) when it is missing."""
    path = fixture_path(name)
    if not path.is_file():
        pytest.fail(f"fixture model {path} is missing; rebuild it with `{REBUILD}`")
    return path


@pytest.fixture(scope="session")
def make_model() -> Callable[..., Path]:
    """Factory: a tiny random-weight digits-shaped net (28 features, 10 classes, hidden 16) as a
    bundled fp32 .onnx file; the same net tests/nets.py exports (rnn, lstm, gru; 1 or 2 layers)."""

    def make(cell: str = "lstm", layers: int = 1, hidden: int = 16) -> Path:
        if hidden != 16:
            pytest.fail(f"no committed fixture with hidden {hidden}; add it to tests/fixtures/build.py")
        return committed(digits_name(cell, layers))

    return make


@pytest.fixture(scope="session", params=SENTIMENT)
def sentiment_model(request: pytest.FixtureRequest) -> Path:
    """Tiny random-weight sentiment models with a 13-word vocabulary: a 2-layer GRU, and a
    1-layer GRU whose head also reads pooled states and n-grams (each test runs on both)."""
    return committed(sentiment_name(request.param))


@pytest.fixture(scope="session")
def char_model() -> Path:
    """A tiny characters LSTM (int8) trained for a few seconds by the project's own commands."""
    return committed(CHARACTERS)
