"""Tiny random-weight nets and their freshly exported model files (torch, onnx, train/, export/).

For tests/train and tests/export, and for tests/fixtures/build.py, which writes the committed
fixture files the runtime's tests use with these very functions and seeds.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
import torch

from edgeinfer.atomic import write_atomic
from edgeinfer.spec import GraphIO, ImageInput, ModelSpec, OutputSpec, TextInput, state_for
from edgeinfer_export.bundle import bundle
from export.graphs import export_graphs
from tests.conftest import TINY_VOCAB
from train.models import NetConfig, RecurrentNet, build


def tiny_spec(net: RecurrentNet) -> ModelSpec:
    """A spec for a small digits-shaped net: image input, one class per digit."""
    c = net.config
    labels = tuple(str(i) for i in range(c.classes))
    return ModelSpec(ImageInput(), OutputSpec("classes", "sequence", labels), c.cell, c.layers, c.hidden,
                     c.input_size, state_for(c.cell, c.layers, c.hidden), io=GraphIO(step_probabilities="p"))


def tiny_net(cell: str, layers: int, hidden: int = 16, seed: int = 0) -> RecurrentNet:
    """A small random-weight net on 28-feature steps with 10 classes."""
    torch.manual_seed(seed)
    return build(NetConfig(cell, 28, hidden, layers, 10)).eval()


def tiny_sentiment_net(readout: bool, layers: int = 2, cell: str = "gru", ngram_pool: str = "mean",
                       short: bool = False) -> tuple[RecurrentNet, ModelSpec]:
    """A tiny random-weight sentiment net (13-word vocabulary) and its spec; with `readout`, the
    head also reads the pooled hidden states and hashed n-grams (non-zero random weights),
    pooled as `ngram_pool` says; with `short`, a short-text branch of 6 units that weighs as much
    as the main head after 4 words."""
    torch.manual_seed(0)
    text = TextInput(vocab=TINY_VOCAB)
    extra: dict[str, Any] = dict(pool=True, ngram_buckets=101, ngram_order=3, ngram_pool=ngram_pool) if readout else {}
    if short:
        extra.update(short_hidden=6, short_words=4.0)
    net = build(NetConfig(cell, 8, 12, layers, 2, vocab=text.vocab_size, **extra)).eval()
    if readout:
        with torch.no_grad():
            net.ngram.weight.normal_(0.0, 1.0)
    c = net.config
    spec = ModelSpec(text, OutputSpec("classes", "sequence", ("negative", "positive")), cell, layers, 12, 8,
                     state_for(cell, layers, 12, c.readout), io=GraphIO(lengths="lengths", step_probabilities="p"),
                     extras={"readout": asdict(c.readout)} if c.readout.active else {})
    return net, spec


def tiny_sentiment_variant(variant: str) -> tuple[RecurrentNet, ModelSpec]:
    """The sentiment fixtures: "gru2" (2-layer GRU), "gru1-readout" (1 layer, pool + n-grams) and
    "gru1-short" (1 layer, pool + n-grams + a short-text branch)."""
    if variant not in ("gru2", "gru1-readout", "gru1-short"):
        raise ValueError(f"unknown tiny sentiment variant {variant!r}")
    return tiny_sentiment_net(variant != "gru2", layers=2 if variant == "gru2" else 1, short=variant == "gru1-short")


def write_model(net: RecurrentNet, spec: ModelSpec, path: Path) -> Path:
    """Export `net` to one bundled fp32 .onnx file at `path`, as export does."""
    seq, step = export_graphs(net, spec)
    write_atomic(path, bundle(seq, step, spec).SerializeToString())
    return path


@pytest.fixture(scope="session")
def make_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Factory: export a tiny random net to a bundled fp32 .onnx file; cached per arguments."""
    cache: dict[tuple[str, int, int], Path] = {}

    def make(cell: str = "lstm", layers: int = 1, hidden: int = 16) -> Path:
        key = (cell, layers, hidden)
        if key not in cache:
            net = tiny_net(cell, layers, hidden)
            cache[key] = write_model(net, tiny_spec(net), tmp_path_factory.mktemp("models") / f"{cell}{layers}.onnx")
        return cache[key]

    return make


@pytest.fixture(scope="session", params=["gru2", "gru1-readout", "gru1-short"])
def sentiment_model(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny random-weight sentiment models with a 13-word vocabulary: a 2-layer GRU, and a
    1-layer GRU whose head also reads pooled states and n-grams (each test runs on both)."""
    net, spec = tiny_sentiment_variant(request.param)
    return write_model(net, spec, tmp_path_factory.mktemp("models") / f"sentiment-{request.param}.onnx")
