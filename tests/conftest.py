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


def tiny_sentiment_net(readout: bool, layers: int = 2, cell: str = "gru", ngram_pool: str = "mean"
                       ) -> tuple[RecurrentNet, ModelSpec]:
    """A tiny random-weight sentiment net (13-word vocabulary) and its spec; with `readout`, the
    head also reads the pooled hidden states and hashed n-grams (non-zero random weights),
    pooled as `ngram_pool` says."""
    torch.manual_seed(0)
    text = TextInput(vocab=TINY_VOCAB)
    extra = dict(pool=True, ngram_buckets=101, ngram_order=3, ngram_pool=ngram_pool) if readout else {}
    net = build(NetConfig(cell, 8, 12, layers, 2, vocab=text.vocab_size, **extra)).eval()
    if readout:
        with torch.no_grad():
            net.ngram.weight.normal_(0.0, 1.0)
    c = net.config
    spec = ModelSpec("sentiment", ("negative", "positive"), text, cell, layers, 12, 8,
                     state_for(cell, layers, 12, c.readout), io=GraphIO(lengths="lengths", step_probabilities="p"),
                     readout=c.readout)
    return net, spec


@pytest.fixture(scope="session", params=["gru2", "gru1-readout"])
def sentiment_model(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny random-weight sentiment models with a 13-word vocabulary: a 2-layer GRU, and a
    1-layer GRU whose head also reads pooled states and n-grams (each test runs on both)."""
    net, spec = tiny_sentiment_net(request.param == "gru1-readout", layers=2 if request.param == "gru2" else 1)
    seq, step = export_graphs(net, spec)
    path = tmp_path_factory.mktemp("models") / f"sentiment-{request.param}.onnx"
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
