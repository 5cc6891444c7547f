"""Shared fixtures: tiny exported models, real-data locations (failing loudly when missing)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest
import torch

from edgeinfer.spec import GraphIO, ImageInput, ModelSpec, TextInput, state_for
from export.graphs import bundle, export_graphs, write_atomic
from train.data import DataMissingError, data_dir, load_mnist
from train.models import NetConfig, RecurrentNet, build

ROOT = Path(__file__).resolve().parents[1]


def tiny_spec(net: RecurrentNet, task: str = "digits") -> ModelSpec:
    """A spec for a small digits-shaped net."""
    c = net.config
    labels = tuple(str(i) for i in range(c.classes))
    return ModelSpec(task, labels, ImageInput(), c.cell, c.layers, c.hidden, c.input_size,
                     state_for(c.cell, c.layers, c.hidden), io=GraphIO(step_probabilities="p"))


def tiny_net(cell: str, layers: int, hidden: int = 16, seed: int = 0) -> RecurrentNet:
    """A small random-weight net on 28-feature steps with 10 classes."""
    torch.manual_seed(seed)
    return build(NetConfig(cell, 28, hidden, layers, 10)).eval()


@pytest.fixture(scope="session")
def make_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Factory: export a tiny random net to a bundled fp32 .onnx file; cached per arguments."""
    cache: dict[tuple, Path] = {}

    def make(cell: str = "lstm", layers: int = 1, hidden: int = 16) -> Path:
        key = (cell, layers, hidden)
        if key not in cache:
            net = tiny_net(cell, layers, hidden)
            spec = tiny_spec(net)
            seq, step = export_graphs(net, spec)
            path = tmp_path_factory.mktemp("models") / f"{cell}{layers}.onnx"
            write_atomic(bundle(seq, step, spec).SerializeToString(), path)
            cache[key] = path
        return cache[key]

    return make


TINY_VOCAB = ("the", "movie", "was", "great", "bad", "awful", "good", "not", "!", "don't", "i", "it", "loved")


@pytest.fixture(scope="session")
def sentiment_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight sentiment model (GRU, 2 layers) with a 13-word vocabulary."""
    torch.manual_seed(0)
    text = TextInput(vocab=TINY_VOCAB)
    net = build(NetConfig("gru", 8, 12, 2, 2, vocab=text.vocab_size)).eval()
    spec = ModelSpec("sentiment", ("negative", "positive"), text, "gru", 2, 12, 8,
                     state_for("gru", 2, 12), io=GraphIO(lengths="lengths", step_probabilities="p"))
    seq, step = export_graphs(net, spec)
    path = tmp_path_factory.mktemp("models") / "sentiment.onnx"
    write_atomic(bundle(seq, step, spec).SerializeToString(), path)
    return path


@pytest.fixture(scope="session")
def mnist_test() -> tuple:
    """The real MNIST test set; the test fails (never skips) when the files are missing."""
    try:
        return load_mnist(data_dir(), "test")
    except DataMissingError as exc:
        pytest.fail(f"real data needed: {exc}")


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m edgeinfer ARGS` as a user would."""
    return subprocess.run([sys.executable, "-m", "edgeinfer", *args], capture_output=True, text=True,
                          input=stdin, timeout=120, cwd=ROOT)
