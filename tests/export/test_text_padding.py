"""Padding: the exported token sequence graph gives each right-padded row what the row gives alone
(moved from tests/edgeinfer/test_text.py: it reads the graph with onnx and export/)."""
from __future__ import annotations

import onnx

from edgeinfer import Model
from edgeinfer_export.bundle import unbundle
from export.parity import padding_error
from tests.conftest import TINY_VOCAB


def test_padded_sequence_graph_equals_each_row_alone(sentiment_model) -> None:
    model = Model(sentiment_model)
    seq, _ = unbundle(onnx.load(sentiment_model))
    assert padding_error(seq, model.spec, len(TINY_VOCAB) + 2) <= 1e-6
